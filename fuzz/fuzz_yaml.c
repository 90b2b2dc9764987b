/* fuzz_yaml.c — libFuzzer target: the YAML config loader (config.h) on any
 * bytes, as a config file or a checkpoint's stored config reaches it: bounds
 * checked before parsing, typed keys, --set overrides, cross-field checks.
 * Every input must end in SR_OK or a config error, never a crash, a
 * sanitizer report or a slow parse. Corpus: fuzz/corpus/yaml (fuzz/README.md). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shardrec/config.h"
#include "shardrec/error.h"
#include "shardrec/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static sr_config defaults; /* parsed once: every key's default is YAML too */
  static int ready;
  if (!ready) sr_log_set_level(SR_LOG_ERROR), sr_config_defaults(&defaults), ready = 1;
  char *text = malloc(size + 1); /* the loader takes a NUL-terminated string */
  memcpy(text, data, size);
  text[size] = '\0';
  sr_config cfg = defaults;
  if (sr_config_load_string(&cfg, text, "fuzz.yaml") == SR_OK) {
    (void)sr_config_validate(&cfg);
    char *yaml = sr_config_to_yaml(&cfg); /* what a checkpoint stores, read back */
    sr_config again = defaults;
    if (sr_config_load_string(&again, yaml, "round trip") != SR_OK) abort(); /* a loaded config must round-trip */
    free(yaml);
  }
  /* The same text as one --set value. */
  const char *eq = memchr(text, '=', size);
  if (eq) (void)sr_config_set(&cfg, text);
  free(text);
  return 0;
}
