// test_checkpoint_mpi.cpp — run under mpiexec with P ranks (ctest: 2 and 4,
// and 2 over TCP). Checkpoints of models whose tensors are split over the
// ranks: the file holds every tensor whole, written by rank 0 from the
// slices the other ranks send (replicas send nothing), and reads back into
// the same split, into another split and whole.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "mpi_main.h"

extern "C" {
#include "shardrec/checkpoint.h"
#include "shardrec/error.h"
#include "shardrec/shard.h"
}

using srtest::world;

namespace {

// The whole tensors: a replicated (3, 4), "rows" (11, 3) split by rows over
// `row_parts` ranks, "cols" (4, 9) split by columns over 2 shards (replicated
// across rank pairs on 4 ranks).
const int64_t kRepShape[2] = {3, 4}, kRowShape[2] = {11, 3}, kColShape[2] = {4, 9};

// Exact in float; distinct per tensor, element and arena.
float encoded(int tensor, int64_t whole_index, float arena) { return (float)(tensor * 1000 + whole_index) + arena; }

void destroy_fake(sr_model *m) {
  sr_params_free(&m->params);
  delete m;
}

sr_model_ops fake_ops() {
  sr_model_ops ops = {};
  ops.name = "fake";
  ops.destroy = destroy_fake;
  return ops;
}
const sr_model_ops kFakeOps = fake_ops();

// A model holding this rank's slices; row_parts = 1 holds "rows" whole.
sr_model *make_model(int row_parts) {
  sr_model *m = new sr_model();
  m->ops = &kFakeOps;
  m->n_items = 9;
  m->dist = &world;
  sr_params_init(&m->params);
  int64_t rb, re, cb, ce;
  const int row_part = world.rank % row_parts;
  sr_shard_even_range(kRowShape[0], row_part, row_parts, &rb, &re);
  sr_shard_even_range(kColShape[1], world.rank % 2, 2, &cb, &ce);
  const int64_t rows[2] = {re - rb, kRowShape[1]}, cols[2] = {kColShape[0], ce - cb};
  sr_params_add(&m->params, "replicated", SR_PARAM_WEIGHT, 2, kRepShape);
  int r = sr_params_add(&m->params, "rows", SR_PARAM_EMBEDDING, 2, rows);
  int c = sr_params_add(&m->params, "cols", SR_PARAM_WEIGHT, 2, cols);
  if (row_parts > 1) sr_params_set_shard(&m->params, r, 0, rb, kRowShape[0]);
  sr_params_set_shard(&m->params, c, 1, cb, kColShape[1]);
  sr_params_finalize(&m->params);
  return m;
}

// The whole-tensor index of local element j of parameter p.
int64_t whole_index(const sr_param *p, int64_t j) {
  int64_t whole[SR_PARAM_MAX_DIM];
  sr_param_full_shape(p, whole);
  int64_t r = j / p->shape[1], c = j % p->shape[1];
  if (p->shard.dim == 0) r += p->shard.begin;
  if (p->shard.dim == 1) c += p->shard.begin;
  return r * whole[1] + c;
}

void fill(sr_model *m, float *arena, float tag) {
  for (int t = 0; t < m->params.count; t++) {
    const sr_param *p = &m->params.items[t];
    for (int64_t j = 0; j < p->numel; j++) arena[p->offset + j] = encoded(t, whole_index(p, j), tag);
  }
}

void expect_filled(sr_model *m, const float *arena, float tag, const char *what) {
  for (int t = 0; t < m->params.count; t++) {
    const sr_param *p = &m->params.items[t];
    for (int64_t j = 0; j < p->numel; j++)
      ASSERT_EQ(arena[p->offset + j], encoded(t, whole_index(p, j), tag))
          << what << " " << p->name << "[" << j << "] on rank " << world.rank;
  }
}

std::string checkpoint_path() { return srtest::job_file("sharded") + ".h5"; }

sr_train_state state_for(sr_model *m) {
  sr_train_state s = {};
  s.epoch = 3;
  s.position = 17;
  s.best_epoch = 2;
  s.best_value = 0.5;
  s.best_values = new float[m->params.total];
  return s;
}

// Writes a training checkpoint of the split model through blocks of 5
// elements (every slice takes several messages).
void write_split_checkpoint() {
  sr_checkpoint_set_block_elems(5);
  sr_model *m = make_model(world.size);
  fill(m, m->params.values, 0.0f);
  fill(m, m->params.adam_m, 0.25f);
  fill(m, m->params.adam_v, 0.5f);
  sr_train_state s = state_for(m);
  fill(m, s.best_values, 0.75f);
  sr_config cfg;
  sr_config_defaults(&cfg);
  sr_optim o;
  sr_optim_init(&o, SR_OPTIM_ADAM);
  o.step = 42;
  ASSERT_EQ(sr_checkpoint_write_training(checkpoint_path().c_str(), m, &cfg, &o, &s), SR_OK) << sr_error_message();
  delete[] s.best_values;
  sr_model_destroy(m);
}

}  // namespace

TEST(CheckpointMpi, FileHoldsWholeTensors) {
  write_split_checkpoint();
  if (world.rank == 0) {
    sr_params ps;
    ASSERT_EQ(sr_checkpoint_read_tensors(checkpoint_path().c_str(), &ps), SR_OK) << sr_error_message();
    const int64_t *shapes[3] = {kRepShape, kRowShape, kColShape};
    const char *names[3] = {"replicated", "rows", "cols"};
    for (int t = 0; t < 3; t++) {
      const sr_param *p = sr_params_find(&ps, names[t]);
      ASSERT_NE(p, nullptr) << names[t];
      ASSERT_EQ(p->shape[0], shapes[t][0]);
      ASSERT_EQ(p->shape[1], shapes[t][1]);
      for (int64_t j = 0; j < p->numel; j++)
        ASSERT_EQ(p->value[j], encoded(t, j, 0.0f)) << names[t] << "[" << j << "]";
    }
    sr_params_free(&ps);
  }
}

TEST(CheckpointMpi, ResumesIntoTheSameAndAnotherSplit) {
  write_split_checkpoint();
  for (int row_parts : {world.size, 1, 2}) {
    sr_model *m = make_model(row_parts);
    sr_train_state s = state_for(m);
    sr_optim o;
    sr_optim_init(&o, SR_OPTIM_ADAM);
    ASSERT_EQ(sr_checkpoint_read_training(checkpoint_path().c_str(), m, &o, &s), SR_OK) << sr_error_message();
    EXPECT_EQ(o.step, 42);
    EXPECT_EQ(s.position, 17);
    std::string what = "split over " + std::to_string(row_parts) + ":";
    expect_filled(m, m->params.values, 0.0f, (what + " values").c_str());
    expect_filled(m, m->params.adam_m, 0.25f, (what + " adam_m").c_str());
    expect_filled(m, m->params.adam_v, 0.5f, (what + " adam_v").c_str());
    expect_filled(m, s.best_values, 0.75f, (what + " best").c_str());
    free(s.history);
    delete[] s.best_values;
    sr_model_destroy(m);
  }
  MPI_Barrier(world.comm);
  if (world.rank == 0) std::remove(checkpoint_path().c_str());
}
