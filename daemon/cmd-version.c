/* version: jobd's version and protocol version. */
#include "jobd.h"

enum cmd_result
cmd_version_exec(struct request *r)
{
	dispatch_reply(r, json_pack("{s:b, s:s, s:i}", "ok", 1, "version",
	                            JOBD_VERSION, "protocol", PROTO_VERSION));
	return (CMD_DONE);
}
