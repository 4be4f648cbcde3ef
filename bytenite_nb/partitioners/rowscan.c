/*
 * The row check of text tables (CSV/TSV), 64 bytes at a time.
 *
 * Built into a plain shared library when the package is installed
 * (hatch_build.py) and called through ctypes by rowscan.py; when it could not
 * be built, rows.py counts fields with numpy instead (the same answers).
 *
 * Each 64-byte block becomes three bitmaps - its double quotes, delimiters
 * and newlines - found with SSE2 compares where the CPU has them, else with
 * word-at-a-time arithmetic. Whether a byte is inside quotes is the parity of
 * the quotes up to it: a prefix XOR of the quote bitmap, carried from block
 * to block. Delimiters and newlines inside quotes are dropped; then each
 * newline left ends a row, whose field count is the delimiters before it,
 * counted with popcount. A scalar loop over every byte pays a mispredicted
 * branch for each delimiter and quote; bitmaps pay about one per row.
 */

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* -DROWSCAN_PORTABLE builds only the code every CPU runs (the tests check it on x86 too) */
#if defined(__SSE2__) && !defined(ROWSCAN_PORTABLE)
#define ROWSCAN_SSE2 1
#endif

#if defined(ROWSCAN_SSE2)
#include <emmintrin.h>
#endif

/* Bumped when the interface changes: rowscan.py refuses a library built from another version. */
#define ROWSCAN_VERSION 2

int rowscan_version(void) { return ROWSCAN_VERSION; }

/* The bits set in x: the CPU's instruction where the caller may use it (a
   constant, so each caller keeps one branch), else a few shifts and adds
   (the builtin without the instruction is a library call, slower). */
static inline __attribute__((always_inline)) int popcount64(uint64_t x, int instruction) {
    if (instruction)
        return __builtin_popcountll(x);
    x = x - ((x >> 1) & 0x5555555555555555ULL);
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
    return (int)((x * 0x0101010101010101ULL) >> 56);
}

#if defined(ROWSCAN_SSE2)
static inline void block_bitmaps(const uint8_t *p, uint8_t delimiter, uint64_t *quotes, uint64_t *delimiters,
                                 uint64_t *newlines) {
    const __m128i q = _mm_set1_epi8('"'), d = _mm_set1_epi8((char)delimiter), n = _mm_set1_epi8('\n');
    uint64_t rq = 0, rd = 0, rn = 0;
    for (int k = 0; k < 4; k++) {
        __m128i x = _mm_loadu_si128((const __m128i *)(p + 16 * k));
        rq |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(x, q)) << (16 * k);
        rd |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(x, d)) << (16 * k);
        rn |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(x, n)) << (16 * k);
    }
    *quotes = rq;
    *delimiters = rd;
    *newlines = rn;
}
#else
/* bit i set where byte i of the little-endian word x equals the byte repeated in pattern */
static inline uint64_t byte_bits(uint64_t x, uint64_t pattern) {
    uint64_t y = x ^ pattern; /* a zero byte where they are equal */
    uint64_t t = ((y & 0x7F7F7F7F7F7F7F7FULL) + 0x7F7F7F7F7F7F7F7FULL) | y;
    uint64_t high = (~t & 0x8080808080808080ULL) >> 7; /* 1 in each zero byte, exactly */
    return (high * 0x0102040810204080ULL) >> 56;
}

static inline uint64_t load_le64(const uint8_t *p) {
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--)
        x = (x << 8) | p[i];
    return x;
}

static inline void block_bitmaps(const uint8_t *p, uint8_t delimiter, uint64_t *quotes, uint64_t *delimiters,
                                 uint64_t *newlines) {
    const uint64_t ones = 0x0101010101010101ULL;
    uint64_t rq = 0, rd = 0, rn = 0;
    for (int k = 0; k < 8; k++) {
        uint64_t x = load_le64(p + 8 * k);
        rq |= byte_bits(x, ones * '"') << (8 * k);
        rd |= byte_bits(x, ones * delimiter) << (8 * k);
        rn |= byte_bits(x, ones * '\n') << (8 * k);
    }
    *quotes = rq;
    *delimiters = rd;
    *newlines = rn;
}
#endif

/* The number of bytes of data[0:n] equal to byte (the plan counts quotes to tell where cuts fall). */
long long rowscan_count(const uint8_t *data, size_t n, uint8_t byte) {
    long long count = 0;
    size_t at = 0;
#if defined(ROWSCAN_SSE2)
    const __m128i b = _mm_set1_epi8((char)byte), zero = _mm_setzero_si128();
    while (n - at >= 16) {
        /* per-lane counts in bytes, summed before they can overflow */
        __m128i lanes = _mm_setzero_si128();
        size_t stop = n - at >= 16 * 255 ? at + 16 * 255 : at + (n - at) / 16 * 16;
        for (; at < stop; at += 16)
            lanes = _mm_sub_epi8(lanes, _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(data + at)), b));
        __m128i sums = _mm_sad_epu8(lanes, zero);
        count += _mm_cvtsi128_si32(sums) + _mm_cvtsi128_si32(_mm_srli_si128(sums, 8));
    }
#endif
    for (; at < n; at++)
        count += data[at] == byte;
    return count;
}

/* bit i of the result: the XOR of bits 0..i of x */
static inline uint64_t prefix_xor(uint64_t x) {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    return x;
}

/*
 * Scan data[0:n], which starts at a row's start outside quotes, for rows of
 * want + 1 fields: a row ends at a newline outside double quotes, and its
 * fields are the delimiters outside quotes before that newline, plus one.
 * Returns the number of whole rows. out[0]: the offset just after the last
 * whole row (0 if none); out[1]: the start of the first whole row with another
 * number of fields, or -1; out[2]: 1 if data ends inside quotes; out[3]: the
 * delimiters outside quotes after the last whole row.
 */
static inline __attribute__((always_inline)) long long check(const uint8_t *data, size_t n, uint8_t delimiter,
                                                              long long want, long long *out, int popcount_instruction) {
    uint64_t inside = 0; /* all ones while inside quotes */
    long long carried = 0, rows = 0, last_end = 0, first_bad = -1;
    uint8_t tail[64];
    for (size_t at = 0; at < n; at += 64) {
        const uint8_t *block = data + at;
        if (n - at < 64) { /* the last partial block, padded with bytes that are none of the three */
            memset(tail, 0, sizeof tail);
            memcpy(tail, block, n - at);
            block = tail;
        }
        uint64_t quotes, delimiters, newlines;
        block_bitmaps(block, delimiter, &quotes, &delimiters, &newlines);
        uint64_t quoted = prefix_xor(quotes) ^ inside;
        inside = (uint64_t)((int64_t)quoted >> 63);
        delimiters &= ~quoted;
        newlines &= ~quoted;
        while (newlines) {
            uint64_t before = (newlines & -newlines) - 1; /* the bits below this row's newline */
            long long counted = carried + popcount64(delimiters & before, popcount_instruction);
            if (counted != want && first_bad < 0)
                first_bad = last_end;
            last_end = (long long)at + __builtin_ctzll(newlines) + 1;
            delimiters &= ~before;
            carried = 0;
            rows++;
            newlines &= newlines - 1;
        }
        carried += popcount64(delimiters, popcount_instruction);
    }
    out[0] = last_end;
    out[1] = first_bad;
    out[2] = (long long)(inside & 1);
    out[3] = carried;
    return rows;
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__POPCNT__) && !defined(ROWSCAN_PORTABLE)
/* Built for any x86-64 CPU, run with the popcount instruction where it has it (nearly every one): 1.25x faster. */
__attribute__((target("popcnt"))) static long long check_with_popcnt(const uint8_t *data, size_t n, uint8_t delimiter,
                                                                     long long want, long long *out) {
    return check(data, n, delimiter, want, out, 1);
}
#define POPCOUNT_DISPATCH 1
#endif

#if defined(__POPCNT__) || defined(__aarch64__)
#define POPCOUNT_INSTRUCTION 1
#else
#define POPCOUNT_INSTRUCTION 0
#endif

long long rowscan_check(const uint8_t *data, size_t n, uint8_t delimiter, long long want, long long *out) {
#ifdef POPCOUNT_DISPATCH
    if (__builtin_cpu_supports("popcnt"))
        return check_with_popcnt(data, n, delimiter, want, out);
#endif
    return check(data, n, delimiter, want, out, POPCOUNT_INSTRUCTION);
}
