/*
 * fsx: the filesystem calls Node's fs module does not offer, for exact backups on Linux.
 *
 *   setTimes(path, atimeS, atimeNs, mtimeS, mtimeNs, noFollow)   utimensat(2): BigInt seconds + nanoseconds
 *   seekData(fd, offset) / seekHole(fd, offset)   lseek(2) SEEK_DATA / SEEK_HOLE
 *   makeNode(path, typeBits, mode, major, minor)  mknod(2) for FIFOs and devices
 *   listXattrs / getXattr / setXattr             (l)listxattr, (l)getxattr, (l)setxattr
 *   punchHole(fd, offset, length)                 fallocate(2) PUNCH_HOLE | KEEP_SIZE
 *
 * Paths are strings or Buffers (names that are not UTF-8). Every call is synchronous, like the
 * *Sync calls of node:fs, and throws an Error with `code` (errno name), `errno` and `syscall`.
 * The TypeScript face and its documentation are in shared/fsutil/native-fs.ts.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>

#define CHECK(call)                                                                                \
  do {                                                                                             \
    if ((call) != napi_ok) return throw_type(env, "fsx: bad arguments");                          \
  } while (0)

static napi_value throw_type(napi_env env, const char *message) {
  napi_throw_type_error(env, NULL, message);
  return NULL;
}

/* Throws an Error shaped like node:fs errors: "<CODE>: <strerror>, <syscall> '<path>'". */
static napi_value throw_errno(napi_env env, int err, const char *syscall, const char *path) {
  const char *code = strerrorname_np(err);
  if (code == NULL) code = "EUNKNOWN";
  char message[PATH_MAX + 256];
  if (path)
    snprintf(message, sizeof message, "%s: %s, %s '%.*s'", code, strerror(err), syscall, 200, path);
  else
    snprintf(message, sizeof message, "%s: %s, %s", code, strerror(err), syscall);
  napi_value msg, code_value, error, errno_value, syscall_value;
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_value);
  napi_create_error(env, code_value, msg, &error);
  napi_create_int32(env, -err, &errno_value);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value);
  napi_set_named_property(env, error, "errno", errno_value);
  napi_set_named_property(env, error, "syscall", syscall_value);
  napi_throw(env, error);
  return NULL;
}

/* Copies a string or Buffer argument into `out` (NUL-terminated). Returns 0, or -1 when not one or too long. */
static int get_path(napi_env env, napi_value value, char *out, size_t capacity) {
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok) return -1;
  if (type == napi_string) {
    size_t length;
    if (napi_get_value_string_utf8(env, value, NULL, 0, &length) != napi_ok || length + 1 > capacity) return -1;
    napi_get_value_string_utf8(env, value, out, capacity, &length);
    return 0;
  }
  bool is_buffer = false;
  napi_is_buffer(env, value, &is_buffer);
  if (!is_buffer) return -1;
  void *data;
  size_t length;
  if (napi_get_buffer_info(env, value, &data, &length) != napi_ok || length + 1 > capacity) return -1;
  if (memchr(data, 0, length) != NULL) return -1;
  memcpy(out, data, length);
  out[length] = 0;
  return 0;
}

static int get_bool(napi_env env, napi_value value, bool *out) {
  return napi_get_value_bool(env, value, out) == napi_ok ? 0 : -1;
}

/* An integer argument that must be a non-negative safe integer (offsets, lengths, fds). */
static int get_int64(napi_env env, napi_value value, int64_t *out) {
  double number;
  if (napi_get_value_double(env, value, &number) != napi_ok) return -1;
  if (!(number >= 0 && number <= 9007199254740991.0) || number != (double)(int64_t)number) return -1;
  *out = (int64_t)number;
  return 0;
}

/*
 * A time as whole seconds since the epoch (BigInt, negative allowed) and nanoseconds (0..999999999),
 * so every time a filesystem can hold fits (a single int64 of nanoseconds ends in 2262).
 */
static int get_timespec(napi_env env, napi_value seconds_value, napi_value nanos_value, struct timespec *out) {
  int64_t seconds;
  uint32_t nanos;
  bool lossless;
  if (napi_get_value_bigint_int64(env, seconds_value, &seconds, &lossless) != napi_ok || !lossless) return -1;
  if (napi_get_value_uint32(env, nanos_value, &nanos) != napi_ok || nanos > 999999999) return -1;
  out->tv_sec = (time_t)seconds;
  out->tv_nsec = (long)nanos;
  return 0;
}

static napi_value set_times_ns(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char path[PATH_MAX + 1];
  struct timespec times[2];
  bool no_follow;
  if (argc < 6 || get_path(env, argv[0], path, sizeof path) || get_timespec(env, argv[1], argv[2], &times[0]) ||
      get_timespec(env, argv[3], argv[4], &times[1]) || get_bool(env, argv[5], &no_follow))
    return throw_type(env, "setTimes(path, atimeSeconds: bigint, atimeNanos: number, mtimeSeconds: bigint, mtimeNanos: number, noFollow: boolean)");
  if (utimensat(AT_FDCWD, path, times, no_follow ? AT_SYMLINK_NOFOLLOW : 0) != 0)
    return throw_errno(env, errno, "utimensat", path);
  return NULL;
}

static napi_value seek(napi_env env, napi_callback_info info, int whence, const char *name) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int64_t fd, offset;
  if (argc < 2 || get_int64(env, argv[0], &fd) || get_int64(env, argv[1], &offset) || fd > INT_MAX)
    return throw_type(env, "seek(fd: number, offset: number)");
  off_t found = lseek((int)fd, (off_t)offset, whence);
  napi_value result;
  if (found < 0) {
    /* ENXIO: no data (or hole) at or after offset; SEEK_DATA's "no more data". */
    if (errno == ENXIO) {
      napi_create_int32(env, -1, &result);
      return result;
    }
    return throw_errno(env, errno, name, NULL);
  }
  napi_create_double(env, (double)found, &result);
  return result;
}

static napi_value seek_data(napi_env env, napi_callback_info info) { return seek(env, info, SEEK_DATA, "lseek SEEK_DATA"); }
static napi_value seek_hole(napi_env env, napi_callback_info info) { return seek(env, info, SEEK_HOLE, "lseek SEEK_HOLE"); }

static napi_value make_node(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char path[PATH_MAX + 1];
  uint32_t type_bits, mode, major_number, minor_number;
  if (argc < 5 || get_path(env, argv[0], path, sizeof path) || napi_get_value_uint32(env, argv[1], &type_bits) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &mode) != napi_ok || napi_get_value_uint32(env, argv[3], &major_number) != napi_ok ||
      napi_get_value_uint32(env, argv[4], &minor_number) != napi_ok)
    return throw_type(env, "makeNode(path, typeBits, mode, major, minor)");
  if (type_bits != S_IFIFO && type_bits != S_IFCHR && type_bits != S_IFBLK)
    return throw_type(env, "makeNode: type must be S_IFIFO, S_IFCHR or S_IFBLK");
  if (mknod(path, (mode_t)(type_bits | (mode & 07777)), makedev(major_number, minor_number)) != 0)
    return throw_errno(env, errno, "mknod", path);
  return NULL;
}

static napi_value list_xattrs(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char path[PATH_MAX + 1];
  bool no_follow;
  if (argc < 2 || get_path(env, argv[0], path, sizeof path) || get_bool(env, argv[1], &no_follow))
    return throw_type(env, "listXattrs(path, noFollow: boolean)");
  char *names = NULL;
  ssize_t length;
  /* The list can grow between the sizing call and the read: retry on ERANGE. */
  for (;;) {
    length = no_follow ? llistxattr(path, NULL, 0) : listxattr(path, NULL, 0);
    /* Most files have none: one system call instead of two for them (a tree walk lists every entry). */
    if (length <= 0) break;
    free(names);
    names = malloc(length > 0 ? (size_t)length : 1);
    if (names == NULL) return throw_errno(env, ENOMEM, "listxattr", path);
    length = no_follow ? llistxattr(path, names, (size_t)length) : listxattr(path, names, (size_t)length);
    if (length >= 0 || errno != ERANGE) break;
  }
  napi_value result;
  napi_create_array(env, &result);
  if (length < 0) {
    int err = errno;
    free(names);
    if (err == ENOTSUP) return result; /* a filesystem without xattrs has none */
    return throw_errno(env, err, "listxattr", path);
  }
  uint32_t index = 0;
  for (ssize_t at = 0; at < length;) {
    size_t name_length = strnlen(names + at, (size_t)(length - at));
    napi_value name;
    napi_create_string_utf8(env, names + at, name_length, &name);
    napi_set_element(env, result, index++, name);
    at += (ssize_t)name_length + 1;
  }
  free(names);
  return result;
}

static napi_value get_xattr(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char path[PATH_MAX + 1], name[XATTR_NAME_MAX + 1];
  bool no_follow;
  if (argc < 3 || get_path(env, argv[0], path, sizeof path) || get_path(env, argv[1], name, sizeof name) ||
      get_bool(env, argv[2], &no_follow))
    return throw_type(env, "getXattr(path, name, noFollow: boolean)");
  void *value = NULL;
  ssize_t length;
  for (;;) {
    length = no_follow ? lgetxattr(path, name, NULL, 0) : getxattr(path, name, NULL, 0);
    if (length < 0) break;
    free(value);
    value = malloc(length > 0 ? (size_t)length : 1);
    if (value == NULL) return throw_errno(env, ENOMEM, "getxattr", path);
    length = no_follow ? lgetxattr(path, name, value, (size_t)length) : getxattr(path, name, value, (size_t)length);
    if (length >= 0 || errno != ERANGE) break;
  }
  if (length < 0) {
    int err = errno;
    free(value);
    return throw_errno(env, err, "getxattr", path);
  }
  napi_value result;
  void *copy;
  napi_create_buffer_copy(env, (size_t)length, value, &copy, &result);
  free(value);
  return result;
}

static napi_value set_xattr(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char path[PATH_MAX + 1], name[XATTR_NAME_MAX + 1];
  bool no_follow, is_buffer = false;
  void *value;
  size_t length;
  if (argc < 4 || get_path(env, argv[0], path, sizeof path) || get_path(env, argv[1], name, sizeof name) ||
      napi_is_buffer(env, argv[2], &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, argv[2], &value, &length) != napi_ok || get_bool(env, argv[3], &no_follow))
    return throw_type(env, "setXattr(path, name, value: Buffer, noFollow: boolean)");
  int rc = no_follow ? lsetxattr(path, name, value, length, 0) : setxattr(path, name, value, length, 0);
  if (rc != 0) return throw_errno(env, errno, "setxattr", path);
  return NULL;
}

static napi_value punch_hole(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int64_t fd, offset, length;
  if (argc < 3 || get_int64(env, argv[0], &fd) || get_int64(env, argv[1], &offset) || get_int64(env, argv[2], &length) ||
      fd > INT_MAX)
    return throw_type(env, "punchHole(fd, offset, length)");
  if (length > 0 && fallocate((int)fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)length) != 0)
    return throw_errno(env, errno, "fallocate", NULL);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor functions[] = {
      {"setTimes", NULL, set_times_ns, NULL, NULL, NULL, napi_default, NULL},
      {"seekData", NULL, seek_data, NULL, NULL, NULL, napi_default, NULL},
      {"seekHole", NULL, seek_hole, NULL, NULL, NULL, napi_default, NULL},
      {"makeNode", NULL, make_node, NULL, NULL, NULL, napi_default, NULL},
      {"listXattrs", NULL, list_xattrs, NULL, NULL, NULL, napi_default, NULL},
      {"getXattr", NULL, get_xattr, NULL, NULL, NULL, napi_default, NULL},
      {"setXattr", NULL, set_xattr, NULL, NULL, NULL, napi_default, NULL},
      {"punchHole", NULL, punch_hole, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof functions / sizeof functions[0], functions);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
