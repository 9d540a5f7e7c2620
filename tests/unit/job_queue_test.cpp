// SPDX-License-Identifier: Apache-2.0
// The one thread pool: background work leaves no thread behind; request threads keep a few,
// grow only while all are busy, and shrink back after a quiet spell; shutdown runs what was
// queued and refuses the rest.
#include <sys/syscall.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <future>
#include <latch>

#include "base/job_queue.hpp"

using namespace dstackvmm::internal;
using namespace std::chrono_literals;

namespace {
auto soon(std::chrono::milliseconds d = 10s) { return std::chrono::steady_clock::now() + d; }
}  // namespace

TEST_CASE("background jobs run on at most max threads and leave none behind", "[pool]") {
  JobQueue q(3);
  std::atomic<int> ran{0};
  std::promise<void> go;
  std::shared_future<void> gate = go.get_future().share();
  std::latch started(3);
  for (int i = 0; i < 10; ++i)
    REQUIRE(q.post([&, gate] {
      if (ran.fetch_add(1) < 3) started.count_down();
      gate.wait();
    }));
  started.wait();
  CHECK(q.threads() == 3);  // ten jobs, three threads
  CHECK(q.pending() == 7);
  go.set_value();
  q.drain();
  CHECK(ran == 10);
  CHECK(q.wait_threads(0, soon()));  // threads end once the queue is empty
}

TEST_CASE("kept threads stay, extra ones end after the idle spell", "[pool]") {
  JobQueue q(4, 1, 50ms);
  std::promise<void> go;
  std::shared_future<void> gate = go.get_future().share();
  std::latch started(4);
  for (int i = 0; i < 4; ++i)
    REQUIRE(q.post([&, gate] {
      started.count_down();
      gate.wait();
    }));
  started.wait();
  CHECK(q.threads() == 4);  // all busy: the pool grew to its maximum
  go.set_value();
  q.drain();
  CHECK(q.wait_threads(1, soon()));
  CHECK_FALSE(q.wait_threads(0, soon(300ms)));  // the kept one stays
  std::promise<void> ran;
  REQUIRE(q.post([&] { ran.set_value(); }));
  CHECK(ran.get_future().wait_for(10s) == std::future_status::ready);
  q.drain();
  CHECK(q.threads() == 1);  // an idle thread took the job: none was added
}

TEST_CASE("a thread beyond those kept takes the next job within its idle spell", "[pool]") {
  JobQueue q(1, 0, 10s);
  auto tid_of_job = [&] {
    std::promise<pid_t> tid;
    REQUIRE(q.post([&] { tid.set_value(static_cast<pid_t>(::syscall(SYS_gettid))); }));
    return tid.get_future().get();
  };
  pid_t first = tid_of_job();
  q.drain();
  CHECK(tid_of_job() == first);  // the same thread, not a new one per job
  q.shutdown();
  CHECK(q.threads() == 0);
}

TEST_CASE("shutdown runs what was queued and refuses new jobs", "[pool]") {
  JobQueue q(1, 1, 10s);
  std::atomic<int> ran{0};
  std::promise<void> go;
  std::shared_future<void> gate = go.get_future().share();
  std::latch started(1);
  REQUIRE(q.post([&, gate] {
    started.count_down();
    gate.wait();
    ++ran;
  }));
  started.wait();
  for (int i = 0; i < 5; ++i) REQUIRE(q.post([&] { ++ran; }));
  auto stopped = std::async(std::launch::async, [&] { q.shutdown(); });
  CHECK(stopped.wait_for(100ms) == std::future_status::timeout);  // waits for the busy job
  go.set_value();
  CHECK(stopped.wait_for(10s) == std::future_status::ready);
  CHECK(ran == 6);
  CHECK(q.threads() == 0);
  CHECK_FALSE(q.post([&] { ++ran; }));
  CHECK(ran == 6);
}
