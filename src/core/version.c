/* The version of the library actually linked; see RP_VERSION_* in
   ringport.h for the version of the headers compiled against. */
#include <ringport/ringport.h>

int rp_version_major(void)
{
    return RP_VERSION_MAJOR;
}

const char *rp_version_string(void)
{
    return RP_VERSION_STRING;
}
