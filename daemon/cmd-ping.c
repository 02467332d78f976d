/* ping: jobd is up and answering. */
#include <unistd.h>

#include "jobd.h"

enum cmd_result
cmd_ping_exec(struct request *r)
{
	json_t *reply =
	    json_pack("{s:b, s:I, s:s}", "ok", 1, "pid", (json_int_t)getpid(),
	              "version", JOBD_VERSION);

	/* A draining jobd says so: it starts no job until its restart. */
	if (server_draining)
		json_object_set_new(
		    reply, "stopping",
		    json_string(server_mode_name(server_draining)));
	dispatch_reply(r, reply);
	return (CMD_DONE);
}
