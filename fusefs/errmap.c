/*
 * errmap.c -- libstore result code -> errno: the one table of fusefs.
 *
 * Every libstore failure reaches the kernel through fs_errno().  A few
 * operations give a more precise errno for one code where POSIX asks for
 * it (a directory rename onto a non-empty directory is ENOTEMPTY, not
 * EEXIST); those overrides sit at the call and are listed in
 * docs/fusefs.md next to this table.
 */
#include <errno.h>

#include "fusefs.h"

static const int errno_of_rc[STORE_ERR__COUNT] = {
    [STORE_OK] = 0,
    [STORE_ERR_NOMEM] = ENOMEM,
    [STORE_ERR_IO] = EIO,
    [STORE_ERR_NOSPC] = ENOSPC,
    [STORE_ERR_READONLY] = EROFS,
    [STORE_ERR_CORRUPT] = EIO,        /* never wrong bytes: fail the read */
    [STORE_ERR_BUSY] = EBUSY,         /* catalog locked past the timeout */
    [STORE_ERR_INVALID] = EINVAL,
    [STORE_ERR_NO_STORE] = EIO,
    [STORE_ERR_STORE_EXISTS] = EEXIST,
    [STORE_ERR_TOO_NEW] = EIO,
    [STORE_ERR_BAD_BUCKET_NAME] = EINVAL, /* mkdir of a bad bucket name */
    [STORE_ERR_BAD_KEY] = EILSEQ,     /* a name that is not UTF-8 */
    [STORE_ERR_KEY_TOO_LONG] = ENAMETOOLONG,
    [STORE_ERR_NO_BUCKET] = ENOENT,
    [STORE_ERR_BUCKET_EXISTS] = EEXIST,
    [STORE_ERR_BUCKET_NOT_EMPTY] = ENOTEMPTY,
    [STORE_ERR_NO_KEY] = ENOENT,
    [STORE_ERR_EXISTS] = EEXIST,
    [STORE_ERR_PRECONDITION] = EEXIST, /* we only use if-none-match: * */
    [STORE_ERR_NO_UPLOAD] = ENOENT,
    [STORE_ERR_INVALID_PART] = EINVAL,
    [STORE_ERR_INVALID_PART_ORDER] = EINVAL,
    [STORE_ERR_ENTITY_TOO_SMALL] = EINVAL,
    [STORE_ERR_TOO_LARGE] = EFBIG,
    [STORE_ERR_BAD_DIGEST] = EIO,
    [STORE_ERR_RANGE] = EINVAL,
    [STORE_ERR_NO_USER] = EACCES,
    [STORE_ERR_USER_EXISTS] = EEXIST,
    [STORE_ERR_NOT_SUPPORTED] = EOPNOTSUPP,
};

int fs_errno(int rc) {
  if (rc == STORE_OK) return 0;
  if (rc < 0 || rc >= STORE_ERR__COUNT || errno_of_rc[rc] == 0) return EIO;
  return errno_of_rc[rc];
}
