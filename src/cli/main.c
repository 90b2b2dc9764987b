/* main.c — the shardrec command-line entry point: dispatches subcommands. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--version") == 0) {
    printf("shardrec %s\n", SHARDREC_VERSION);
    return 0;
  }
  fprintf(stderr, "usage: shardrec <command> [args]\n");
  return 2;
}
