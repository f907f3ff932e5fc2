// Live updates by polling: a tick every interval while it says there is more to wait
// for, paused while the tab is hidden, resumed when it is shown again.

export function poller(tick, intervalMs, onState = () => {}) {
  let timer = null;
  let wanted = false;

  function schedule() {
    if (timer !== null || !wanted || document.hidden) {
      onState(wanted && !document.hidden ? "live" : wanted ? "paused" : "idle");
      return;
    }
    onState("live");
    timer = setTimeout(run, intervalMs);
  }

  async function run() {
    timer = null;
    try {
      wanted = await tick();
    } catch (err) {
      wanted = err.status !== 401; // a refused key stops it; anything else is retried
    }
    schedule();
  }

  document.addEventListener("visibilitychange", schedule);
  return {
    wake() {
      wanted = true;
      schedule();
    },
    stop() {
      wanted = false;
      if (timer !== null) clearTimeout(timer);
      timer = null;
      onState("idle");
    },
  };
}
