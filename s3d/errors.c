/*
 * errors.c -- the S3 error vocabulary of s3d and the ONE table that maps
 * libstore result codes to it.  Authentication results have their own table
 * in sigv4.c (s3sig_error); everything else goes through here.
 */
#include "s3d.h"

static const struct s3err_info k_errors[S3E__COUNT] = {
  [S3E_NONE] = {"OK", 200, "OK"},
  [S3E_AccessDenied] = {"AccessDenied", 403, "Access Denied"},
  [S3E_BadDigest] = {"BadDigest", 400,
                     "The Content-MD5 or checksum you specified did not "
                     "match what we received."},
  [S3E_BucketAlreadyExists] = {"BucketAlreadyExists", 409,
                               "The requested bucket name is not available."},
  [S3E_BucketAlreadyOwnedByYou] = {"BucketAlreadyOwnedByYou", 409,
                                   "Your previous request to create the named "
                                   "bucket succeeded and you already own it."},
  [S3E_BucketNotEmpty] = {"BucketNotEmpty", 409,
                          "The bucket you tried to delete is not empty"},
  [S3E_EntityTooLarge] = {"EntityTooLarge", 400,
                          "Your proposed upload exceeds the maximum allowed "
                          "object size."},
  [S3E_EntityTooSmall] = {"EntityTooSmall", 400,
                          "Your proposed upload is smaller than the minimum "
                          "allowed object size."},
  [S3E_IncompleteBody] = {"IncompleteBody", 400,
                          "You did not provide the number of bytes specified "
                          "by the Content-Length HTTP header."},
  [S3E_InternalError] = {"InternalError", 500,
                         "We encountered an internal error. Please try again."},
  [S3E_InvalidAccessKeyId] = {"InvalidAccessKeyId", 403,
                              "The AWS Access Key Id you provided does not "
                              "exist in our records."},
  [S3E_InvalidArgument] = {"InvalidArgument", 400, "Invalid Argument"},
  [S3E_InvalidBucketName] = {"InvalidBucketName", 400,
                             "The specified bucket is not valid."},
  [S3E_InvalidDigest] = {"InvalidDigest", 400,
                         "The Content-MD5 you specified is not valid."},
  [S3E_InvalidPart] = {"InvalidPart", 400,
                       "One or more of the specified parts could not be "
                       "found. The part might not have been uploaded, or the "
                       "specified entity tag might not have matched the "
                       "part's entity tag."},
  [S3E_InvalidPartOrder] = {"InvalidPartOrder", 400,
                            "The list of parts was not in ascending order. "
                            "The parts list must be specified in order by "
                            "part number."},
  [S3E_InvalidRange] = {"InvalidRange", 416,
                        "The requested range is not satisfiable"},
  [S3E_InvalidRequest] = {"InvalidRequest", 400, "Invalid Request"},
  [S3E_InvalidStorageClass] = {"InvalidStorageClass", 400,
                               "The storage class you specified is not "
                               "valid"},
  [S3E_InvalidTag] = {"InvalidTag", 400, "The tag provided was not valid."},
  [S3E_InvalidURI] = {"InvalidURI", 400, "Couldn't parse the specified URI."},
  [S3E_KeyTooLongError] = {"KeyTooLongError", 400, "Your key is too long"},
  [S3E_MalformedPOSTRequest] = {"MalformedPOSTRequest", 400,
                                "The body of your POST request is not "
                                "well-formed multipart/form-data."},
  [S3E_MalformedXML] = {"MalformedXML", 400,
                        "The XML you provided was not well-formed or did not "
                        "validate against our published schema"},
  [S3E_MaxMessageLengthExceeded] = {"MaxMessageLengthExceeded", 400,
                                    "Your request was too big."},
  [S3E_MetadataTooLarge] = {"MetadataTooLarge", 400,
                            "Your metadata headers exceed the maximum "
                            "allowed metadata size."},
  [S3E_MethodNotAllowed] = {"MethodNotAllowed", 405,
                            "The specified method is not allowed against "
                            "this resource."},
  [S3E_MissingContentLength] = {"MissingContentLength", 411,
                                "You must provide the Content-Length HTTP "
                                "header."},
  [S3E_NoSuchBucket] = {"NoSuchBucket", 404,
                        "The specified bucket does not exist"},
  [S3E_NoSuchKey] = {"NoSuchKey", 404, "The specified key does not exist."},
  [S3E_NoSuchTagSet] = {"NoSuchTagSet", 404, "The TagSet does not exist"},
  [S3E_NoSuchUpload] = {"NoSuchUpload", 404,
                        "The specified upload does not exist. The upload ID "
                        "may be invalid, or the upload may have been aborted "
                        "or completed."},
  [S3E_NotImplemented] = {"NotImplemented", 501,
                          "A header or query you provided implies "
                          "functionality that is not implemented."},
  [S3E_NotModified] = {"NotModified", 304, "Not Modified"},
  [S3E_PreconditionFailed] = {"PreconditionFailed", 412,
                              "At least one of the pre-conditions you "
                              "specified did not hold"},
  [S3E_RequestTimeTooSkewed] = {"RequestTimeTooSkewed", 403,
                                "The difference between the request time and "
                                "the current time is too large."},
  [S3E_ServiceUnavailable] = {"ServiceUnavailable", 503,
                              "Please reduce your request rate."},
  [S3E_SignatureDoesNotMatch] = {"SignatureDoesNotMatch", 403,
                                 "The request signature we calculated does "
                                 "not match the signature you provided."},
  [S3E_SlowDown] = {"SlowDown", 503, "Please reduce your request rate."},
  [S3E_XAmzContentSHA256Mismatch] = {"XAmzContentSHA256Mismatch", 400,
                                     "The provided 'x-amz-content-sha256' "
                                     "header does not match what was "
                                     "computed."},
  [S3E_InvalidChecksum] = {"BadDigest", 400,
                           "The checksum you specified did not match the "
                           "calculated checksum."},
  [S3E_InsufficientStorage] = {"InsufficientStorage", 507,
                               "Your request could not be stored: the store "
                               "is out of space."},
  /* A read-only store (opened so, or its filesystem turned read-only under
     us) is a state of the server, not a fault of the request nor of the
     credentials: 503 ServiceUnavailable, the code S3 uses when it cannot
     take a request for now, with a message that says why.  Reads go on. */
  [S3E_StoreReadOnly] = {"ServiceUnavailable", 503,
                         "The store is read-only: it serves reads, but "
                         "refuses writes until it is writable again."},
};

const struct s3err_info *s3err_get(enum s3err e) {
  if ((int)e < 0 || e >= S3E__COUNT || !k_errors[e].code)
    return &k_errors[S3E_InternalError];
  return &k_errors[e];
}

/* libstore result -> S3 error.  The one table; callers that know better for
 * one operation (NO_KEY on DeleteObject is success, TOO_LARGE on metadata)
 * decide before calling it. */
static const enum s3err k_rc_map[STORE_ERR__COUNT] = {
  [STORE_OK] = S3E_NONE,
  [STORE_ERR_NOMEM] = S3E_SlowDown,
  [STORE_ERR_IO] = S3E_InternalError,
  [STORE_ERR_NOSPC] = S3E_InsufficientStorage,
  [STORE_ERR_READONLY] = S3E_StoreReadOnly,
  [STORE_ERR_CORRUPT] = S3E_InternalError,
  [STORE_ERR_BUSY] = S3E_SlowDown,
  [STORE_ERR_INVALID] = S3E_InvalidArgument,
  [STORE_ERR_NO_STORE] = S3E_InternalError,
  [STORE_ERR_STORE_EXISTS] = S3E_InternalError,
  [STORE_ERR_TOO_NEW] = S3E_InternalError,
  [STORE_ERR_BAD_BUCKET_NAME] = S3E_InvalidBucketName,
  [STORE_ERR_BAD_KEY] = S3E_InvalidArgument,
  [STORE_ERR_KEY_TOO_LONG] = S3E_KeyTooLongError,
  [STORE_ERR_NO_BUCKET] = S3E_NoSuchBucket,
  [STORE_ERR_BUCKET_EXISTS] = S3E_BucketAlreadyOwnedByYou,
  [STORE_ERR_BUCKET_NOT_EMPTY] = S3E_BucketNotEmpty,
  [STORE_ERR_NO_KEY] = S3E_NoSuchKey,
  [STORE_ERR_EXISTS] = S3E_PreconditionFailed,
  [STORE_ERR_PRECONDITION] = S3E_PreconditionFailed,
  [STORE_ERR_NO_UPLOAD] = S3E_NoSuchUpload,
  [STORE_ERR_INVALID_PART] = S3E_InvalidPart,
  [STORE_ERR_INVALID_PART_ORDER] = S3E_InvalidPartOrder,
  [STORE_ERR_ENTITY_TOO_SMALL] = S3E_EntityTooSmall,
  [STORE_ERR_TOO_LARGE] = S3E_EntityTooLarge,
  [STORE_ERR_BAD_DIGEST] = S3E_BadDigest,
  [STORE_ERR_RANGE] = S3E_InvalidRange,
  [STORE_ERR_NO_USER] = S3E_InvalidAccessKeyId,
  [STORE_ERR_USER_EXISTS] = S3E_InvalidArgument,
  [STORE_ERR_NOT_SUPPORTED] = S3E_NotImplemented,
};

enum s3err s3err_from_rc(int rc) {
  if (rc < 0 || rc >= STORE_ERR__COUNT) return S3E_InternalError;
  return k_rc_map[rc];
}
