#include <git2.h>

/* git_libgit2_opts is variadic, which Swift cannot call: these fix its arguments. */

/* Makes libgit2 fsync loose objects, refs and their directories before a write returns. */
static inline int lte_git_set_fsync_gitdir(int enabled) {
    return git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, enabled);
}

/* Makes every object read re-hash its content and fail on a mismatch (libgit2's default). */
static inline int lte_git_set_strict_hash_verification(int enabled) {
    return git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, enabled);
}

#include <string.h>
#include <zlib.h>

/*
 * Whether `data` is one complete zlib stream (1) or not (0). libgit2 1.5 loops forever reading a
 * loose object whose zlib stream is truncated (libgit2 issue #7342, fixed after 1.5), so the history
 * checks loose object files with this before handing them to libgit2.
 */
static inline int lte_zlib_stream_is_complete(const unsigned char *data, size_t size) {
    z_stream s;
    memset(&s, 0, sizeof s);
    if (inflateInit(&s) != Z_OK) return 0;
    unsigned char out[16384];
    size_t offset = 0;
    int r = Z_OK;
    while (r == Z_OK) {
        if (s.avail_in == 0 && offset < size) {
            size_t n = size - offset;
            if (n > (1u << 30)) n = 1u << 30;
            s.next_in = (Bytef *)(data + offset);
            s.avail_in = (uInt)n;
            offset += n;
        }
        s.next_out = out;
        s.avail_out = sizeof out;
        r = inflate(&s, Z_NO_FLUSH);
        if (r == Z_BUF_ERROR && s.avail_in == 0 && offset < size) r = Z_OK;
    }
    inflateEnd(&s);
    return r == Z_STREAM_END;
}
