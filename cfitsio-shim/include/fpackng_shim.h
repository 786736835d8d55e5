/*
 * fpackng_shim.h: the C API of libfpackng_shim.so, version 2.
 *
 * Version 2 adds whole arrays (fpng_encode_array, fpng_get_array_info,
 * fpng_decode_array, fpng_free), whole files (fpng_compress_file,
 * fpng_decompress_file) and, at the end of fpng_codec_info, is_standard and
 * the default strip; version-1 callers (struct_size 40) are still served.
 *
 * Codes one FITS tile with any algorithm of fpack-ng (the standard ones and
 * the new ones: JXL_1, ...), so that readers with no codec plugin mechanism
 * (cfitsio through the LD_PRELOAD interposer in the same library, astropy
 * through the fpack-ng Python package in python/) can read and write them.
 *
 * Conventions, for every function:
 * - the return value is FPNG_OK (0) or a negative FPNG_ERR_* code; nothing
 *   crashes on null pointers, short buffers or damaged tiles;
 * - fpng_last_error() then gives a message for the calling thread;
 * - pixels are native-endian, no alignment required; "tile_bitpix" is the
 *   type of the pixels as coded: ZBITPIX for integer images, 32 for
 *   quantized floating-point images;
 * - shapes are fastest-varying axis first (ZTILE1, ZTILE2, ...), clipped at
 *   the image edge;
 * - params are the HDU's ZNAMEn/ZVALn pairs in order;
 * - structs carry struct_size, set by the caller to sizeof(the struct), so
 *   that later versions can grow them.
 * All functions are thread-safe.
 */
#ifndef FPACKNG_SHIM_H
#define FPACKNG_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FPNG_API_VERSION 2

enum {
    FPNG_OK = 0,
    FPNG_ERR_NULL_POINTER = -1,   /* a required pointer is NULL */
    FPNG_ERR_BAD_ARGUMENT = -2,   /* bad BITPIX, shape, index, ... */
    FPNG_ERR_UNKNOWN_CODEC = -3,  /* no such ZCMPTYPE in this build */
    FPNG_ERR_UNSUPPORTED = -4,    /* codec cannot code this pixel type / shape */
    FPNG_ERR_BUFFER_SIZE = -5,    /* output buffer too small / input wrong size */
    FPNG_ERR_CORRUPT = -6,        /* the compressed tile is damaged */
    FPNG_ERR_BAD_PARAMETER = -7,  /* a ZNAMEn/ZVALn parameter is missing or bad */
    FPNG_ERR_LIMIT = -8,          /* tile larger than the library's limits */
    FPNG_ERR_INTERNAL = -9,       /* a bug; please report */
    FPNG_ERR_STRUCT_VERSION = -10, /* struct_size not a size this build knows */
    FPNG_ERR_IO = -11,            /* a file could not be read or written */
    FPNG_ERR_VERIFICATION = -12   /* a written file did not read back as its source */
};

/* bits of fpng_codec_info.bitpix_mask */
#define FPNG_BITPIX_U8  1u   /* BITPIX 8   */
#define FPNG_BITPIX_I16 2u   /* BITPIX 16  */
#define FPNG_BITPIX_I32 4u   /* BITPIX 32  */
#define FPNG_BITPIX_I64 8u   /* BITPIX 64  */
#define FPNG_BITPIX_F32 16u  /* BITPIX -32 */
#define FPNG_BITPIX_F64 32u  /* BITPIX -64 */

typedef struct {
    uint32_t struct_size;     /* in: sizeof(fpng_codec_info) */
    uint32_t api_version;     /* out: FPNG_API_VERSION of the library */
    char zcmptype[24];        /* out: the ZCMPTYPE value, NUL-terminated */
    uint32_t bitpix_mask;     /* out: FPNG_BITPIX_* the codec codes */
    uint8_t can_encode;       /* out: 1 if this build writes it */
    uint8_t cfitsio_native;   /* out: 1 if libcfitsio decodes it itself */
    char heap_element;        /* out: TFORM element of COMPRESSED_DATA ('B', 'I') */
    uint8_t reserved;
    /* version 2 (struct_size 52; 40 gets the fields above only) */
    uint8_t is_standard;      /* out: 1 if an algorithm of the FITS standard */
    uint8_t reserved2[3];
    uint32_t strip_rows;      /* out: default tiles are full-width strips of at */
    uint32_t strip_pixels;    /*      least these rows and pixels; 0: one row */
} fpng_codec_info;

#define FPNG_PARAM_INT 1
#define FPNG_PARAM_FLOAT 2
#define FPNG_PARAM_TEXT 3

typedef struct {
    char name[72];            /* ZNAMEn value, NUL-terminated */
    int32_t kind;             /* FPNG_PARAM_INT, _FLOAT or _TEXT */
    int64_t int_value;        /* for FPNG_PARAM_INT */
    double float_value;       /* for FPNG_PARAM_FLOAT */
    char text_value[72];      /* for FPNG_PARAM_TEXT, NUL-terminated */
} fpng_param;

/* FPNG_API_VERSION of the loaded library. */
uint32_t fpng_api_version(void);

/* Number of codecs; fpng_codec_get(0 .. count-1) lists them. */
int32_t fpng_codec_count(void);
int32_t fpng_codec_get(int32_t index, fpng_codec_info *info);
/* Looks a ZCMPTYPE up (case-insensitive, aliases such as RICE_ONE too). */
int32_t fpng_codec_find(const char *zcmptype, fpng_codec_info *info);

/* The ZNAMEn/ZVALn pairs to write for tiles of tile_bitpix, with default
 * encoder options. *count gets the number of pairs; at most capacity are
 * written (FPNG_ERR_BUFFER_SIZE, with *count set, if capacity is short). */
int32_t fpng_default_params(const char *zcmptype, int32_t tile_bitpix,
                            fpng_param *params, size_t capacity, size_t *count);

/* Encodes one tile of native-endian pixels (pixels_size must be exactly
 * npixels * bytes per pixel). On FPNG_ERR_BUFFER_SIZE because out is too
 * short, *out_size is the size needed; call again with a larger buffer. */
int32_t fpng_encode_tile(const char *zcmptype, int32_t tile_bitpix,
                         const size_t *shape, size_t ndim,
                         const fpng_param *params, size_t nparams,
                         const void *pixels, size_t pixels_size,
                         uint8_t *out, size_t out_capacity, size_t *out_size);

/* Decodes one tile into native-endian pixels; pixels_size must be exactly
 * npixels * bytes per pixel. Bytes are those of the heap, as stored. */
int32_t fpng_decode_tile(const char *zcmptype, int32_t tile_bitpix,
                         const size_t *shape, size_t ndim,
                         const fpng_param *params, size_t nparams,
                         const uint8_t *data, size_t data_size,
                         void *pixels, size_t pixels_size);

/* Version 2: whole arrays. An array of ndim (1..8) axes, numpy order
 * (slowest axis first), of native-endian elements of dtype "u1", "i1", "i2",
 * "u2", "i4", "u4", "i8", "u8", "f4" or "f8" (unsigned types and int8 are
 * coded with FITS's BZERO convention), is cut into tiles (tile: ndim axis
 * lengths, 0 = whole axis; NULL = the codec's default tiles), coded in
 * parallel, and returned in *out as one self-describing stream (format in
 * cfitsio-shim/src/array.rs; CRC-protected) that the caller frees with
 * fpng_free. params override the codec's default ZNAMEn/ZVALn pairs. */
int32_t fpng_encode_array(const char *zcmptype, const char *dtype,
                          const size_t *shape, size_t ndim, const size_t *tile,
                          const fpng_param *params, size_t nparams,
                          const void *pixels, size_t pixels_size,
                          uint8_t **out, size_t *out_size);
void fpng_free(uint8_t *data, size_t size);

typedef struct {
    uint32_t struct_size;     /* in: sizeof(fpng_array_info) */
    uint32_t ndim;            /* out */
    char dtype[4];            /* out: "u2", ... NUL-terminated */
    char zcmptype[24];        /* out */
    uint64_t shape[8];        /* out: numpy order, ndim used */
    uint64_t tile[8];         /* out: numpy order, ndim used */
    uint64_t ntiles;          /* out */
    uint64_t nbytes;          /* out: bytes of the decoded array */
} fpng_array_info;

/* Reads (and checks) a stream's header. */
int32_t fpng_get_array_info(const uint8_t *data, size_t size, fpng_array_info *info);
/* Decodes a stream into pixels (exactly info.nbytes bytes). */
int32_t fpng_decode_array(const uint8_t *data, size_t size,
                          void *pixels, size_t pixels_size);

/* Version 2: whole files, as fpack-ng and funpack-ng write them (every tile
 * verified, a temporary file read back and renamed into place). tile: ZTILE
 * axes (FITS order; ntile 0 = the codec's default); quantize_level: fpack's
 * -q for floating-point images, 0 = lossless. */
#define FPNG_FILE_OVERWRITE 1u     /* replace an existing output */
#define FPNG_FILE_DELETE_INPUT 2u  /* fpack -D */
#define FPNG_FILE_NO_CHECKSUMS 4u  /* fpack -C */
int32_t fpng_compress_file(const char *input, const char *output,
                           const char *zcmptype, const size_t *tile,
                           size_t ntile, double quantize_level, uint32_t flags);
int32_t fpng_decompress_file(const char *input, const char *output,
                             uint32_t flags);

/* A static description of an error code (never NULL). */
const char *fpng_strerror(int32_t code);

/* The message of the calling thread's last error, NUL-terminated and cut to
 * fit capacity; returns the message's full length (0 if none). buf may be
 * NULL to ask for the length. */
size_t fpng_last_error(char *buf, size_t capacity);

#ifdef __cplusplus
}
#endif
#endif /* FPACKNG_SHIM_H */
