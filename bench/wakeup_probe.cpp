// wakeup-probe: how late this machine wakes a sleeping thread. It sleeps 1 ms at a time for the
// given seconds and counts the wake-ups that came late by more than 1, 2 and 5 ms.
//
// bench/gateway/run.sh runs it beside each miss run (PROBE=1): a stall that delays this thread
// delays every hop of every request in flight at that moment, so it shows how much of a p99 is
// the machine's rather than the server's. Usage: wakeup-probe [seconds]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

int main(int argc, char** argv) {
  using namespace std::chrono;
  constexpr auto kSleep = milliseconds(1);
  const int seconds_to_run = argc > 1 ? std::atoi(argv[1]) : 10;
  const auto end = steady_clock::now() + seconds(seconds_to_run);
  long wakeups = 0, late_1ms = 0, late_2ms = 0, late_5ms = 0;
  microseconds worst{0};
  while (steady_clock::now() < end) {
    const auto before = steady_clock::now();
    std::this_thread::sleep_for(kSleep);
    const auto late = duration_cast<microseconds>(steady_clock::now() - before - kSleep);
    ++wakeups;
    late_1ms += late > milliseconds(1);
    late_2ms += late > milliseconds(2);
    late_5ms += late > milliseconds(5);
    if (late > worst) worst = late;
  }
  std::printf("wakeups=%ld late>1ms=%ld late>2ms=%ld late>5ms=%ld worst=%ldus\n", wakeups, late_1ms,
              late_2ms, late_5ms, static_cast<long>(worst.count()));
}
