/* fuzz_import.c — libFuzzer target: the text importers (import.h) on any
 * bytes. The first byte picks the format (MovieLens, Netflix, MSD triplets,
 * LightGCN, generic CSV with a header, string ids, values); the rest is
 * written to a file the importer reads and splits (nothing is written out).
 * Every input must end in SR_OK or an error, never a crash or a sanitizer
 * report. Corpus: fuzz/corpus/import (fuzz/README.md). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shardrec/dataset.h"
#include "shardrec/error.h"
#include "shardrec/import.h"
#include "shardrec/log.h"

static const sr_import_format formats[] = {SR_IMPORT_MOVIELENS, SR_IMPORT_NETFLIX, SR_IMPORT_MSD,
                                           SR_IMPORT_LIGHTGCN, SR_IMPORT_CSV};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static char path[64];
  if (!path[0]) {
    sr_log_set_level(SR_LOG_ERROR);
    snprintf(path, sizeof path, "/tmp/shardrec-fuzz-import.%ld.csv", (long)getpid());
  }
  if (size < 1) return 0;
  FILE *f = fopen(path, "wb");
  if (!f) abort();
  fwrite(data + 1, 1, size - 1, f);
  fclose(f);
  const sr_import_format format = formats[data[0] % 5];
  sr_import_opts o;
  sr_import_opts_default(&o, format);
  const char *inputs[2] = {path, path}; /* LightGCN: train and test file */
  o.inputs = inputs;
  o.n_inputs = format == SR_IMPORT_LIGHTGCN ? 2 : 1;
  if (format == SR_IMPORT_CSV) {
    o.header = data[0] & 8;
    o.columns = o.header ? "user=user,item=item,rating=rating" : "user=0,item=1,rating=2";
    o.string_ids = data[0] & 16;
    o.keep_values = data[0] & 32;
  }
  o.skip_bad_lines = data[0] & 64;
  o.min_user_items = o.min_item_users = 1;
  sr_import_table t;
  sr_dataset d;
  sr_dataset_init(&d);
  if (sr_import_load(&o, &t) == SR_OK) {
    (void)sr_import_split(&o, &t, &d);
    sr_import_table_free(&t);
  }
  sr_dataset_free(&d);
  return 0;
}
