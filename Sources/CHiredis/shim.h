// hiredis (Debian's libhiredis-dev), found through pkg-config.
#include <hiredis/hiredis.h>
