/* Reads one image through libcfitsio the way any program does, and writes
 * its pixels as native doubles to a file (compared byte for byte by
 * tests/cfitsio.rs between the original and the compressed file).
 *   read_image FILE[ext][section] OUT      fits_open_image + fits_read_img
 *   read_image --write FILE                try to overwrite pixel 1 (must fail
 *                                          for new algorithms, see the shim)
 *   read_image --then-rice IN OUT          read IN, close it, then write a new
 *                                          RICE_1 image to OUT and read it back
 *                                          (the shim must forget IN's HDUs) */
#include <fitsio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int report(int status) {
    fits_report_error(stderr, status);
    return 1;
}

int main(int argc, char **argv) {
    fitsfile *f;
    int status = 0, bitpix, naxis, anynul = 0;
    long naxes[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    if (argc == 3 && strcmp(argv[1], "--write") == 0) {
        short one = 1;
        if (fits_open_image(&f, argv[2], READWRITE, &status)) return report(status);
        fits_write_img(f, TSHORT, 1, 1, &one, &status);
        fits_close_file(f, &status);
        if (status) return report(status);
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "--then-rice") == 0) {
        short out[100 * 60], back[100 * 60];
        double in[64];
        int n_in = 0;
        void *first;
        if (fits_open_image(&f, argv[2], READONLY, &status)) return report(status);
        fits_read_img(f, TDOUBLE, 1, 64, NULL, in, &anynul, &status);
        first = f->Fptr;
        fits_close_file(f, &status);
        if (status) return report(status);
        for (int i = 0; i < 100 * 60; i++) out[i] = (short)(i % 977 - 300);
        long axes[2] = {100, 60};
        remove(argv[3]);
        if (fits_create_file(&f, argv[3], &status)) return report(status);
        fits_set_compression_type(f, RICE_1, &status);
        fits_create_img(f, SHORT_IMG, 2, axes, &status);
        fits_write_img(f, TSHORT, 1, 100 * 60, out, &status);
        printf("same FITSfile address: %s\n", (void *)f->Fptr == first ? "yes" : "no");
        fits_close_file(f, &status);
        if (status) return report(status);
        if (fits_open_image(&f, argv[3], READONLY, &status)) return report(status);
        fits_read_img(f, TSHORT, 1, 100 * 60, NULL, back, &anynul, &status);
        fits_close_file(f, &status);
        if (status) return report(status);
        n_in = memcmp(out, back, sizeof out) == 0;
        printf("rice round trip: %s\n", n_in ? "identical" : "DIFFERENT");
        return n_in ? 0 : 1;
    }
    if (argc != 3) {
        fprintf(stderr, "usage: read_image FILE OUT | --write FILE\n");
        return 2;
    }
    if (fits_open_image(&f, argv[1], READONLY, &status)) return report(status);
    if (fits_get_img_param(f, 9, &bitpix, &naxis, naxes, &status)) return report(status);
    long long n = 1;
    for (int i = 0; i < naxis; i++) n *= naxes[i];
    double *pixels = malloc((size_t)(n ? n : 1) * sizeof(double));
    if (!pixels) return 1;
    if (fits_read_img(f, TDOUBLE, 1, n, NULL, pixels, &anynul, &status)) return report(status);
    fits_close_file(f, &status);
    FILE *out = fopen(argv[2], "wb");
    if (!out || fwrite(pixels, sizeof(double), (size_t)n, out) != (size_t)n) return 1;
    fclose(out);
    printf("bitpix=%d naxis=%d n=%lld anynul=%d\n", bitpix, naxis, n, anynul);
    free(pixels);
    return 0;
}
