/* Writes an image the way a pipeline does with libcfitsio: reads the first
 * image of IN, then creates OUT, asks for a compression algorithm with
 * fits_set_compression_type and writes the pixels with fits_write_img
 * (the equivalent type: unsigned 16-bit stays unsigned; integers scaled
 * by BSCALE are copied as stored; floats are quantized by cfitsio's
 * defaults). Used by tests/write.rs under
 * `fpack-ng shim --write CODEC`.
 *   write_image IN OUT [RICE_1|GZIP_1|GZIP_2|HCOMPRESS_1] */
#include <fitsio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int report(int status) {
    fits_report_error(stderr, status);
    return 1;
}

int main(int argc, char **argv) {
    fitsfile *in, *out;
    int status = 0, bitpix, naxis, anynul = 0, algorithm = RICE_1, type;
    long naxes[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: write_image IN OUT [ALGORITHM]\n");
        return 2;
    }
    if (argc == 4) {
        if (strcmp(argv[3], "GZIP_1") == 0) algorithm = GZIP_1;
        else if (strcmp(argv[3], "GZIP_2") == 0) algorithm = GZIP_2;
        else if (strcmp(argv[3], "HCOMPRESS_1") == 0) algorithm = HCOMPRESS_1;
        else if (strcmp(argv[3], "RICE_1") != 0) return 2;
    }
    if (fits_open_image(&in, argv[1], READONLY, &status)) return report(status);
    int stored;
    if (fits_get_img_equivtype(in, &bitpix, &status)) return report(status);
    if (fits_get_img_type(in, &stored, &status)) return report(status);
    if (stored > 0 && bitpix < 0) {
        /* Integers scaled to floats (BSCALE): copy the stored integers. */
        bitpix = stored;
        fits_set_bscale(in, 1.0, 0.0, &status);
    }
    if (fits_get_img_dim(in, &naxis, &status)) return report(status);
    if (naxis < 1 || naxis > 9 || fits_get_img_size(in, 9, naxes, &status)) return report(status);
    long long n = 1;
    for (int i = 0; i < naxis; i++) n *= naxes[i];
    switch (bitpix) {
    case BYTE_IMG: type = TBYTE; break;
    case SHORT_IMG: type = TSHORT; break;
    case USHORT_IMG: type = TUSHORT; break;
    case LONG_IMG: type = TINT; break;
    case ULONG_IMG: type = TUINT; break;
    case LONGLONG_IMG: type = TLONGLONG; break;
    case FLOAT_IMG: type = TFLOAT; break;
    default: type = TDOUBLE; break;
    }
    void *pixels = malloc((size_t)(n ? n : 1) * 8);
    if (!pixels) return 1;
    if (fits_read_img(in, type, 1, n, NULL, pixels, &anynul, &status)) return report(status);
    fits_close_file(in, &status);
    remove(argv[2]);
    if (fits_create_file(&out, argv[2], &status)) return report(status);
    fits_set_compression_type(out, algorithm, &status);
    fits_create_img(out, bitpix, naxis, naxes, &status);
    fits_write_img(out, type, 1, n, pixels, &status);
    fits_close_file(out, &status);
    free(pixels);
    if (status) return report(status);
    printf("wrote %lld pixels of BITPIX=%d\n", n, bitpix);
    return 0;
}
