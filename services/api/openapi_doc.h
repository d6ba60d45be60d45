/* The OpenAPI document of the whole HTTP surface (docs/openapi.json), built into the binary by
 * cmake/embed.cmake, so the server always serves the document of the version it is. */
#ifndef API_OPENAPI_DOC_H
#define API_OPENAPI_DOC_H
#include <stddef.h>

/** The bytes of docs/openapi.json (followed by a NUL not counted in openapi_json_len). */
extern const unsigned char openapi_json[];
extern const size_t openapi_json_len;

#endif
