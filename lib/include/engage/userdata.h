/* A callback's user data: the JSON object an integrator attaches to it and gets back with it
 * (the v3 API's userData, the voice stream's user_data, a call-in request's userData). */
#ifndef ENGAGE_USERDATA_H
#define ENGAGE_USERDATA_H

/** The largest user data accepted, in bytes of its JSON text (100 KiB). Every entry point
 *  refuses more, naming the limit, so a record never grows past it in Redis or PostgreSQL. */
#define EG_USER_DATA_MAX (100 * 1024)

#endif
