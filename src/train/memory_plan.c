/* memory_plan.c — per-rank memory use, reported and checked (memory_plan.h). */
#include "shardrec/memory_plan.h"

#include <stdio.h>

#include "shardrec/error.h"
#include "shardrec/log.h"
#include "shardrec/sysmem.h"

int sr_memory_budget_measure(const sr_dist *world, sr_memory_budget *b) {
  SR_TRY(sr_sysmem_available(&b->node_bytes, &b->source));
  SR_TRY(sr_dist_node_size(world, &b->node_ranks));
  b->per_rank = b->node_bytes < 0 ? -1 : b->node_bytes / b->node_ranks;
  return SR_OK;
}

void sr_memory_use_of(const sr_model *m, int64_t train_rows, int64_t eval_rows, sr_memory_use *use) {
  const sr_params *ps = &m->params;
  const int64_t f = (int64_t)sizeof(float);
  const int fitted = m->ops->fit != NULL; /* closed form: no best-validation copy, no Adam state */
  use->parameters = (fitted ? 1 : 2) * ps->total * f;
  use->gradients = ps->dense_total * f;
  use->optimizer = fitted ? 0 : 2 * ps->total * f;
  const int64_t scored = m->items ? m->items->item_end - m->items->item_begin : m->n_items;
  use->activations =
      m->ops->activation_bytes ? m->ops->activation_bytes(m, train_rows, eval_rows) + eval_rows * scored * f : -1;
}

static int64_t total_of(const sr_memory_use *u) {
  return u->parameters + u->gradients + u->optimizer + (u->activations > 0 ? u->activations : 0);
}

/* "1.23 GiB", "45.6 MiB", "789 KiB" */
static void format_bytes(int64_t bytes, char *buf, size_t n) {
  const double b = (double)bytes;
  if (b >= 1024.0 * 1024 * 1024)
    snprintf(buf, n, "%.2f GiB", b / (1024.0 * 1024 * 1024));
  else if (b >= 1024.0 * 1024)
    snprintf(buf, n, "%.1f MiB", b / (1024.0 * 1024));
  else
    snprintf(buf, n, "%.0f KiB", b / 1024.0);
}

int sr_memory_check(const sr_dist *world, const sr_memory_use *use, const sr_memory_budget *b) {
  /* The worst rank's figure of each kind, the largest total, and the
   * smallest budget (nodes may differ): every rank decides alike. */
  int64_t worst[6] = {use->parameters,  use->gradients, use->optimizer,
                      use->activations, total_of(use),  b->per_rank < 0 ? INT64_MIN : -b->per_rank};
  SR_TRY(sr_dist_max_i64(world, worst, 6));
  char params[32], grads[32], optim[32], acts[32], total[32], avail[32], node[32];
  format_bytes(worst[0], params, sizeof params);
  format_bytes(worst[1], grads, sizeof grads);
  format_bytes(worst[2], optim, sizeof optim);
  if (worst[3] < 0)
    snprintf(acts, sizeof acts, "not estimated");
  else
    format_bytes(worst[3], acts, sizeof acts);
  format_bytes(worst[4], total, sizeof total);
  char line[512];
  snprintf(line, sizeof line,
           "parameters %s (values and best-validation copy), gradients %s, optimizer state %s, activations %s; "
           "total %s",
           params, grads, optim, acts, total);
  sr_info("memory per rank (worst rank): %s", line);
  if (worst[5] == INT64_MIN) {
    sr_warn("memory available unknown (no /proc/meminfo nor cgroup limit): not checked");
    return SR_OK;
  }
  const int64_t per_rank = -worst[5];
  if (worst[4] <= per_rank) return SR_OK;
  format_bytes(per_rank, avail, sizeof avail);
  format_bytes(b->node_bytes, node, sizeof node);
  return SR_FAIL(SR_ENOMEM,
                 "not enough memory: training needs %s per rank (%s) but a rank has %s (%s: %s shared by %d "
                 "rank(s) of the node). Raise the number of ranks (on more nodes), dist.item_parallel (Mult-VAE/DAE: "
                 "K ranks split the item layers) or model.table_sharding (two-tower)",
                 total, line, avail, b->source, node, b->node_ranks);
}
