/* ping: jobd is up and answering. */
#include <unistd.h>

#include "jobd.h"

enum cmd_result
cmd_ping_exec(struct request *r)
{
	dispatch_reply(r, json_pack("{s:b, s:I, s:s}", "ok", 1, "pid",
	                            (json_int_t)getpid(), "version",
	                            JOBD_VERSION));
	return (CMD_DONE);
}
