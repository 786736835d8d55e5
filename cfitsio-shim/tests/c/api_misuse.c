/* Drives the C API of fpackng_shim.h from C: lists the codecs, round-trips
 * a 16-bit tile through each codec named on the command line, and makes
 * every kind of misuse the header promises to survive (NULL pointers, short
 * buffers, wrong sizes and struct versions, damaged tiles). Prints "ok"
 * and exits 0 when every call returned what it should. */
#include "fpackng_shim.h"
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;
#define EXPECT(cond) do { if (!(cond)) { fprintf(stderr, "line %d: %s failed\n", __LINE__, #cond); failures++; } } while (0)

static void check_codec(const char *name) {
    fpng_codec_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    EXPECT(fpng_codec_find(name, &info) == FPNG_OK);
    EXPECT(strcmp(info.zcmptype, name) == 0);
    EXPECT(info.cfitsio_native == 0);
    EXPECT(info.bitpix_mask & FPNG_BITPIX_I16);

    fpng_param params[16];
    size_t nparams = 0;
    EXPECT(fpng_default_params(name, 16, params, 16, &nparams) == FPNG_OK);
    size_t needed = 0;
    if (nparams > 0) {
        EXPECT(fpng_default_params(name, 16, params, 0, &needed) == FPNG_ERR_BUFFER_SIZE);
        EXPECT(needed == nparams);
    }

    /* three axes, so that codecs coding planes together (CUBE_1) run too */
    enum { W = 37, H = 23, P = 3 };
    size_t shape[3] = {W, H, P};
    int16_t pixels[W * H * P], back[W * H * P];
    for (int i = 0; i < W * H * P; i++) pixels[i] = (int16_t)((i * 7919) % 4000 - 1500 + (i % W) * 3);
    size_t cap = sizeof pixels * 2 + 4096, size = 0;
    uint8_t *coded = malloc(cap);
    EXPECT(fpng_encode_tile(name, 16, shape, 3, params, nparams, pixels, sizeof pixels, coded, cap, &size) == FPNG_OK);
    EXPECT(size > 0 && size <= cap);
    EXPECT(fpng_decode_tile(name, 16, shape, 3, params, nparams, coded, size, back, sizeof back) == FPNG_OK);
    EXPECT(memcmp(pixels, back, sizeof pixels) == 0);

    /* short output buffer: error and the size needed */
    size_t small = 0;
    EXPECT(fpng_encode_tile(name, 16, shape, 3, params, nparams, pixels, sizeof pixels, coded, 1, &small) == FPNG_ERR_BUFFER_SIZE);
    EXPECT(small == size);
    /* wrong sizes */
    EXPECT(fpng_encode_tile(name, 16, shape, 3, params, nparams, pixels, sizeof pixels - 2, coded, cap, &small) == FPNG_ERR_BUFFER_SIZE);
    EXPECT(fpng_decode_tile(name, 16, shape, 3, params, nparams, coded, size, back, sizeof back - 1) == FPNG_ERR_BUFFER_SIZE);
    EXPECT(fpng_decode_tile(name, 8, shape, 3, params, nparams, coded, size, back, W * H * P) < 0);
    /* NULL pointers */
    EXPECT(fpng_decode_tile(NULL, 16, shape, 3, params, nparams, coded, size, back, sizeof back) == FPNG_ERR_NULL_POINTER);
    EXPECT(fpng_decode_tile(name, 16, NULL, 2, params, nparams, coded, size, back, sizeof back) == FPNG_ERR_NULL_POINTER);
    EXPECT(fpng_decode_tile(name, 16, shape, 3, NULL, 3, coded, size, back, sizeof back) == FPNG_ERR_NULL_POINTER);
    EXPECT(fpng_decode_tile(name, 16, shape, 3, params, nparams, NULL, size, back, sizeof back) == FPNG_ERR_NULL_POINTER);
    EXPECT(fpng_decode_tile(name, 16, shape, 3, params, nparams, coded, size, NULL, sizeof back) == FPNG_ERR_NULL_POINTER);
    EXPECT(fpng_encode_tile(name, 16, shape, 3, params, nparams, pixels, sizeof pixels, coded, cap, NULL) == FPNG_ERR_NULL_POINTER);
    /* bad arguments */
    EXPECT(fpng_decode_tile(name, 12, shape, 3, params, nparams, coded, size, back, sizeof back) == FPNG_ERR_BAD_ARGUMENT);
    EXPECT(fpng_decode_tile(name, 16, shape, 0, params, nparams, coded, size, back, sizeof back) == FPNG_ERR_BAD_ARGUMENT);
    size_t huge[2] = {(size_t)1 << 40, (size_t)1 << 40};
    EXPECT(fpng_decode_tile(name, 16, huge, 2, params, nparams, coded, size, back, sizeof back) == FPNG_ERR_LIMIT);
    EXPECT(fpng_decode_tile("NO_SUCH_1", 16, shape, 3, params, nparams, coded, size, back, sizeof back) == FPNG_ERR_UNKNOWN_CODEC);
    fpng_param bad = params[0];
    bad.kind = 99;
    EXPECT(fpng_decode_tile(name, 16, shape, 3, &bad, 1, coded, size, back, sizeof back) == FPNG_ERR_BAD_ARGUMENT);
    memset(bad.name, 'X', sizeof bad.name); /* not NUL-terminated */
    EXPECT(fpng_decode_tile(name, 16, shape, 3, &bad, 1, coded, size, back, sizeof back) == FPNG_ERR_BAD_ARGUMENT);
    /* damaged tiles: every truncation and single-byte corruptions */
    for (size_t cut = 0; cut < size; cut += (size / 50) + 1)
        EXPECT(fpng_decode_tile(name, 16, shape, 3, params, nparams, coded, cut, back, sizeof back) < 0);
    for (size_t i = 0; i < size; i += (size / 40) + 1) {
        uint8_t saved = coded[i];
        coded[i] ^= 0x5a;
        int rc = fpng_decode_tile(name, 16, shape, 3, params, nparams, coded, size, back, sizeof back);
        EXPECT(rc == FPNG_OK || rc == FPNG_ERR_CORRUPT || rc == FPNG_ERR_UNSUPPORTED);
        coded[i] = saved;
    }
    /* the message of the last error is there and NUL-terminated */
    EXPECT(fpng_decode_tile(name, 16, shape, 3, params, nparams, coded, 3, back, sizeof back) < 0);
    char message[16];
    size_t full = fpng_last_error(message, sizeof message);
    EXPECT(full > 0 && strlen(message) == (full < 15 ? full : 15));
    free(coded);
}

/* Version 2's arrays: a uint16 array through RICE_1 and back, its info,
 * and a damaged stream refused. */
static void check_arrays(void) {
    uint16_t pixels[5][7], back[5][7];
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 7; j++) pixels[i][j] = (uint16_t)(60000 + i * 100 + j);
    size_t shape[2] = {5, 7}, tile[2] = {2, 0}, size = 0;
    uint8_t *stream = NULL;
    EXPECT(fpng_encode_array("RICE_1", "u2", shape, 2, tile, NULL, 0, pixels, sizeof pixels, &stream, &size) == FPNG_OK);
    fpng_array_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    EXPECT(fpng_get_array_info(stream, size, &info) == FPNG_OK);
    EXPECT(info.ndim == 2 && info.shape[0] == 5 && info.shape[1] == 7 && info.tile[0] == 2 && info.tile[1] == 7);
    EXPECT(info.ntiles == 3 && info.nbytes == sizeof pixels && strcmp(info.dtype, "u2") == 0);
    EXPECT(fpng_decode_array(stream, size, back, sizeof back) == FPNG_OK && memcmp(pixels, back, sizeof back) == 0);
    EXPECT(fpng_decode_array(stream, size, back, sizeof back - 2) == FPNG_ERR_BUFFER_SIZE);
    stream[size / 2] ^= 0x40;
    EXPECT(fpng_decode_array(stream, size, back, sizeof back) == FPNG_ERR_CORRUPT);
    EXPECT(fpng_encode_array("RICE_1", "f4", shape, 2, NULL, NULL, 0, pixels, sizeof pixels, &stream, &size) == FPNG_ERR_UNSUPPORTED);
    fpng_free(stream, size);
}

int main(int argc, char **argv) {
    EXPECT(fpng_api_version() == FPNG_API_VERSION);
    int n = fpng_codec_count();
    EXPECT(n >= 7);
    int found = 0;
    for (int i = 0; i < n; i++) {
        fpng_codec_info info;
        info.struct_size = sizeof info;
        EXPECT(fpng_codec_get(i, &info) == FPNG_OK);
        EXPECT(info.api_version == FPNG_API_VERSION);
        printf("%s%s\n", info.zcmptype, info.cfitsio_native ? "" : " (new)");
        if (strcmp(info.zcmptype, "RICE_1") == 0) found = 1;
    }
    EXPECT(found);
    fpng_codec_info info;
    info.struct_size = sizeof info - 4;
    EXPECT(fpng_codec_get(0, &info) == FPNG_ERR_STRUCT_VERSION);
    /* A version-1 caller (40 bytes) gets the leading fields, nothing past them. */
    memset(&info, 0x5a, sizeof info);
    info.struct_size = offsetof(fpng_codec_info, is_standard);
    EXPECT(info.struct_size == 40);
    EXPECT(fpng_codec_find("RICE_1", &info) == FPNG_OK && strcmp(info.zcmptype, "RICE_1") == 0);
    EXPECT(info.is_standard == 0x5a && info.strip_rows == 0x5a5a5a5au);
    info.struct_size = sizeof info;
    EXPECT(fpng_codec_find("RICE_1", &info) == FPNG_OK && info.is_standard == 1);
    EXPECT(fpng_codec_get(n, &info) == FPNG_ERR_BAD_ARGUMENT);
    EXPECT(fpng_codec_get(-1, &info) == FPNG_ERR_BAD_ARGUMENT);
    EXPECT(fpng_codec_get(0, NULL) == FPNG_ERR_NULL_POINTER);
    EXPECT(fpng_codec_find(NULL, &info) == FPNG_ERR_NULL_POINTER);
    EXPECT(fpng_codec_find("rice_one", &info) == FPNG_OK && strcmp(info.zcmptype, "RICE_1") == 0);
    EXPECT(fpng_codec_find("\xff\xfe", &info) == FPNG_ERR_BAD_ARGUMENT);
    EXPECT(fpng_strerror(FPNG_ERR_CORRUPT) != NULL && fpng_strerror(12345) != NULL);
    EXPECT(fpng_last_error(NULL, 0) > 0);
    check_arrays();
    for (int i = 1; i < argc; i++) check_codec(argv[i]);
    if (failures) {
        fprintf(stderr, "%d failures\n", failures);
        return 1;
    }
    printf("ok\n");
    return 0;
}
