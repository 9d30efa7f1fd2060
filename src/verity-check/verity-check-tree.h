/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* dm-verity hash trees in the on-disk format of veritysetup (format version 1, "hash type 1"): a
 * 512-byte superblock at the hash offset, the tree at the next hash block after it, levels stored from
 * the top (one block) down to the leaves; each digest is hash(salt || block), padded with zeros to a
 * power of two, and a hash block is zero-filled after its last digest. */

#include <stdatomic.h>

#include "macro.h"

#define VERITY_SUPERBLOCK_SIZE 512
#define VERITY_SALT_MAX 256
#define VERITY_DIGEST_MAX 64
#define VERITY_LEVELS_MAX 32
#define VERITY_BLOCK_SIZE_MIN 512
#define VERITY_BLOCK_SIZE_MAX 65536
/* Flatcar's /usr slot (spec §7): 1 GiB partition, filesystem of 260094 blocks, tree right after it. */
#define VERITY_FLATCAR_DATA_BLOCKS UINT64_C(260094)
#define VERITY_FLATCAR_HASH_OFFSET UINT64_C(1065345024)
#define VERITY_FLATCAR_SLOT_SIZE UINT64_C(1073741824)
#define VERITY_DEFAULT_BLOCK_SIZE 4096
#define VERITY_DEFAULT_SALT_SIZE 32
/* The whole tree is held in memory; this caps it (covers ~128 GiB of data at 4 KiB blocks). */
#define VERITY_TREE_MAX (UINT64_C(1) << 30)

typedef struct VeritySuperblock {
        uint32_t version;
        uint32_t hash_type;
        uint8_t uuid[16];
        char algorithm[33];
        uint32_t data_block_size;
        uint32_t hash_block_size;
        uint64_t data_blocks;
        uint16_t salt_size;
        uint8_t salt[VERITY_SALT_MAX];
} VeritySuperblock;

/* Parses and checks the 512 bytes at the hash offset. On failure returns -EBADMSG (or -EOPNOTSUPP for
 * a well-formed but unsupported superblock) and writes what is wrong into reason (may be NULL). */
int verity_superblock_parse(const uint8_t *buf, size_t size, VeritySuperblock *ret, char *reason,
                            size_t reason_size);
/* Digest size of a hash algorithm name as written in the superblock, or -EOPNOTSUPP. */
int verity_digest_size(const char *algorithm);
/* Serialises sb into exactly VERITY_SUPERBLOCK_SIZE bytes. */
void verity_superblock_build(const VeritySuperblock *sb, uint8_t ret[VERITY_SUPERBLOCK_SIZE]);

typedef struct VerityGeometry {
        uint64_t data_blocks;
        uint32_t data_block_size;
        uint32_t hash_block_size;
        uint32_t digest_size;      /* bytes the hash produces */
        uint32_t digest_size_full; /* rounded up to a power of two: the stride of digests in a block */
        uint32_t hashes_per_block;
        unsigned levels;           /* 0 when there is only one data block: its hash is the root */
        /* Level 0 holds the digests of the data blocks; level levels-1 is the single top block. */
        uint64_t level_start[VERITY_LEVELS_MAX];  /* in hash blocks from tree_offset */
        uint64_t level_blocks[VERITY_LEVELS_MAX];
        uint64_t tree_blocks;
        uint64_t hash_offset; /* bytes from the start of the slot: the superblock */
        uint64_t tree_offset; /* bytes from the start of the slot: the top level */
        uint64_t end_offset;  /* bytes from the start of the slot: just after the last hash block */
} VerityGeometry;

/* Lays out the tree like veritysetup. -EINVAL for impossible sizes, -EOVERFLOW if it does not fit in 64
 * bits, -EFBIG if the tree exceeds VERITY_TREE_MAX. */
int verity_geometry_compute(uint64_t data_blocks, uint32_t data_block_size, uint32_t hash_block_size,
                            uint32_t digest_size, uint64_t hash_offset, VerityGeometry *ret);
/* Absolute hash block number (counted in hash blocks from the start of the slot) of a block of a level. */
uint64_t verity_geometry_hash_block(const VerityGeometry *g, unsigned level, uint64_t index);
/* The largest number of data blocks for which data, superblock block and tree fit in slot_size bytes,
 * with the tree right after the data (Flatcar's 260094 for 1 GiB). 0 if nothing fits. */
uint64_t verity_max_data_blocks(uint64_t slot_size, uint32_t block_size, uint32_t digest_size);

/* Where verification stopped, for the caller's error message and the varlink error. */
typedef enum VerityFailureKind {
        VERITY_FAILURE_NONE,
        VERITY_FAILURE_BAD_SUPERBLOCK, /* also impossible layouts; reason says which */
        VERITY_FAILURE_ROOT_HASH_MISMATCH,
        VERITY_FAILURE_CORRUPTED,
        VERITY_FAILURE_IO,
        _VERITY_FAILURE_MAX,
        _VERITY_FAILURE_INVALID = -EINVAL,
} VerityFailureKind;

typedef enum VerityArea {
        VERITY_AREA_DATA,
        VERITY_AREA_HASH,
        VERITY_AREA_SUPERBLOCK,
        _VERITY_AREA_MAX,
        _VERITY_AREA_INVALID = -EINVAL,
} VerityArea;

const char *verity_area_to_string(VerityArea a);

typedef struct VerityFailure {
        VerityFailureKind kind;
        VerityArea area;
        uint64_t block; /* data block number, or absolute hash block number */
        int level;      /* hash level for VERITY_AREA_HASH, -1 otherwise */
        uint64_t index; /* index of the block within its level */
        char actual_root[VERITY_DIGEST_MAX * 2 + 1];
        char message[512];
} VerityFailure;

/* Progress callback: called from the thread that started the operation, a few times a second and once
 * at the end. Returning < 0 cancels the operation with that error. */
typedef int (*VerityProgress)(uint64_t done, uint64_t total, void *userdata);

typedef struct VeritySlot {
        int fd;
        uint64_t offset; /* byte offset of the slot within fd */
        uint64_t size;   /* bytes of the slot */
        bool growable;   /* a regular file whose size was not fixed: format may extend it */
} VeritySlot;

/* Opens path (file or block device) and fills in offset/size; size UINT64_MAX means "to the end".
 * writable opens block devices O_EXCL so that a mounted one is refused. */
int verity_slot_open(const char *path, bool writable, uint64_t offset, uint64_t size, VeritySlot *ret);
/* Fills in the size of an already open fd (for fds received over varlink). */
int verity_slot_from_fd(int fd, uint64_t offset, uint64_t size, VeritySlot *ret);

typedef struct VerityVerifyOptions {
        uint64_t hash_offset;            /* UINT64_MAX: derive from the filesystem, else Flatcar's */
        const uint8_t *expected_root;    /* NULL: compute and report only (never call that verified) */
        size_t expected_root_size;
        unsigned threads;                /* 0: verity_default_threads() */
        VerityProgress progress;
        void *userdata;
        atomic_bool *cancel;             /* optional: set from another thread to stop */
} VerityVerifyOptions;

typedef struct VerityVerifyResult {
        char root_hash[VERITY_DIGEST_MAX * 2 + 1];
        uint64_t data_blocks;
        uint32_t data_block_size;
        uint64_t hash_offset;
        uint64_t end_offset; /* just after the last hash block: hash_offset..end_offset is the hash area */
        char hash_offset_source[32]; /* "explicit", "ext4", "squashfs", "erofs", "flatcar-default" */
        char algorithm[33];
        char salt[VERITY_SALT_MAX * 2 + 1];
        char uuid[37];
} VerityVerifyResult;

/* Returns 0 when every data block matches the tree and the tree matches the expected root hash.
 * On failure returns a negative errno and fills ret_failure (kind, block, message). */
int verity_verify(const VeritySlot *slot, const VerityVerifyOptions *opts, VerityVerifyResult *ret,
                  VerityFailure *ret_failure);

typedef struct VerityFormatOptions {
        uint64_t data_blocks;   /* UINT64_MAX: from the filesystem, else the largest that fits */
        uint64_t hash_offset;   /* UINT64_MAX: right after the data */
        uint32_t block_size;    /* data and hash block size; 0 = 4096 */
        const uint8_t *salt;    /* NULL: random VERITY_DEFAULT_SALT_SIZE bytes */
        size_t salt_size;
        const uint8_t *uuid;    /* NULL: random */
        unsigned threads;
        VerityProgress progress;
        void *userdata;
} VerityFormatOptions;

int verity_format(const VeritySlot *slot, const VerityFormatOptions *opts, VerityVerifyResult *ret,
                  VerityFailure *ret_failure);

/* Hashing threads when none are asked for: two per CPU this process may run on. */
unsigned verity_default_threads(void);
