/* Checked file-system steps shared by every folder that writes files: paths, whole reads and
 * writes at an offset, small text files, fsync of a directory, mkdir -p and removal of a tree.
 * Each failure is one message naming the path (gt_err). */
#ifndef GT_FS_H
#define GT_FS_H

#include <stddef.h>
#include <stdint.h>

#include "base.h"

/* dir + "/" + name into buf; fails when it does not fit. */
int gt_path_join(char *buf, size_t len, const char *dir, const char *name, gt_err *err);
/* The same join, no message; 1 when buf then names a regular file (or a link to one). */
int gt_file_at(char *buf, size_t len, const char *dir, const char *name);
/* The same without keeping the path: 1 when dir/name is a regular file. */
int gt_file_exists(const char *dir, const char *name);
/* All n bytes at offset off (retrying short transfers and EINTR); path names the file in messages. */
int gt_pwrite_all(int fd, const void *buf, size_t n, uint64_t off, const char *path, gt_err *err);
int gt_pread_all(int fd, void *buf, size_t n, uint64_t off, const char *path, gt_err *err);
/* Creates path with text (+ newline), fsyncs and closes it; removes it on failure. */
int gt_write_text(const char *path, const char *text, gt_err *err);
/* Reads a whole small file (malloc'ed, NUL-terminated). */
int gt_read_text(const char *path, char **text, gt_err *err);
int gt_fsync_dir(const char *dir, gt_err *err);
/* mkdir -p */
int gt_mkdirs(const char *path, gt_err *err);
/* Removes a directory and everything under it; missing is fine. */
int gt_remove_tree(const char *path, gt_err *err);

#endif
