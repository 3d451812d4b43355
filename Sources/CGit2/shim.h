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
