/* Subjects and stream names on the bus, shared by every service. */
#ifndef ENGAGE_SUBJECTS_H
#define ENGAGE_SUBJECTS_H

/** Scheduler requests (queue group EG_SCHED_QUEUE); the last token names the operation. */
#define EG_SUBJ_SCHED_PREFIX "engage.sched."
#define EG_SUBJ_SCHED_ALL "engage.sched.>"
#define EG_SUBJ_AUTH "engage.sched.auth"
#define EG_SUBJ_CREATE "engage.sched.create"
#define EG_SUBJ_RETRIEVE "engage.sched.retrieve"
#define EG_SUBJ_CANCEL "engage.sched.cancel"
#define EG_SUBJ_SERVICE_PUT "engage.sched.service.put"
#define EG_SUBJ_SERVICE_GET "engage.sched.service.get"
#define EG_SUBJ_SERVICE_DELETE "engage.sched.service.delete"
#define EG_SUBJ_PROGRESS "engage.sched.progress"
#define EG_SUBJ_RESCHEDULE "engage.sched.reschedule"
#define EG_SUBJ_FIND "engage.sched.find"
#define EG_SUBJ_AVAILABILITY "engage.sched.query.availability"
#define EG_SUBJ_OPEN_FOR "engage.sched.query.open-for"
#define EG_SUBJ_QUEUE_STATUS "engage.sched.query.queue-status"
#define EG_SUBJ_EWT "engage.sched.query.ewt"
#define EG_SUBJ_STATS "engage.sched.query.stats"
#define EG_SCHED_QUEUE "scheduler"

/** Broadcast: configuration changed (protobuf ConfigChanged); every cache drops the entry. */
#define EG_SUBJ_CONFIG_CHANGED "engage.config.changed"

/** JetStream: lifecycle events (engage.events.<tenant>) and dispatches. */
#define EG_STREAM_EVENTS "ENGAGE_EVENTS"
#define EG_SUBJ_EVENTS_PREFIX "engage.events."
#define EG_SUBJ_EVENTS_ALL "engage.events.>"
#define EG_SUBJ_DISPATCH_PREFIX "engage.dispatch."
#define EG_SUBJ_DISPATCH_ALL "engage.dispatch.>"
/** Durable consumers on ENGAGE_EVENTS. */
#define EG_DURABLE_ARCHIVER "archiver"
#define EG_DURABLE_BRIDGE "ors-bridge"

/** Core NATS wake-up for dispatchers: a callback falls due earlier than announced (payload:
 *  the due time in ms as decimal text). */
#define EG_SUBJ_DUE_WAKE "engage.due.wake"

/** Scheduler requests on API keys (admin API): create, list, revoke. */
#define EG_SUBJ_KEY_CREATE "engage.sched.key.create"
#define EG_SUBJ_KEY_LIST "engage.sched.key.list"
#define EG_SUBJ_KEY_REVOKE "engage.sched.key.revoke"

/** Scheduler requests for Click-to-Call-In: group configuration (admin API) and requests. */
#define EG_SUBJ_CALLIN_GROUP_PUT "engage.sched.callin.group.put"
#define EG_SUBJ_CALLIN_GROUP_GET "engage.sched.callin.group.get"
#define EG_SUBJ_CALLIN_GROUP_DELETE "engage.sched.callin.group.delete"
#define EG_SUBJ_CALLIN_CREATE "engage.sched.callin.create"

/** Scheduler requests for voice platform entries the ors-bridge forwards: call.inbound matching
 *  (CallInMatchRequest -> CallInMatchReply) and queue.stats (QueueStatsRequest -> StatusReply). */
#define EG_SUBJ_CALLIN_MATCH "engage.sched.callin.match"
#define EG_SUBJ_QSTATS_PUT "engage.sched.qstats.put"

/** Archiver requests (queue group EG_ARCHIVE_QUEUE): history search and GDPR by phone number
 *  (ArchiveSearchRequest -> ArchiveSearchReply; GdprRequest -> GdprEraseReply/GdprExportReply). */
#define EG_SUBJ_ARCHIVE_ALL "engage.archive.>"
#define EG_SUBJ_ARCHIVE_SEARCH "engage.archive.search"
#define EG_SUBJ_ARCHIVE_GDPR_ERASE "engage.archive.gdpr.erase"
#define EG_SUBJ_ARCHIVE_GDPR_EXPORT "engage.archive.gdpr.export"
#define EG_ARCHIVE_QUEUE "archiver"

/** Scheduler side of a GDPR erase (GdprRequest -> GdprEraseReply): cancel the number's active
 *  callbacks, then delete its Redis records and indexes. */
#define EG_SUBJ_GDPR_ERASE "engage.sched.gdpr.erase"

#endif
