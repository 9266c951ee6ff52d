//! The client's request deadlines ([`RequestTimer`]) against a model written from their
//! documented rules: which deadline each step starts, restarts or stops, and which timeout
//! a step at `now` reports. After every step the timer's phase, earliest deadline and fired
//! timeout must be the model's; and for any timer, a timeout fires exactly when its earliest
//! deadline has come, after which no deadline is left.

use arbitrary::Arbitrary;
use std::time::Duration;
use tether_core::time::{ClientTimeouts, Instant, RequestPhase, RequestTimer, TimeoutKind};

/// One step: time moves on by `after_ms`, then the event happens.
#[derive(Debug, Clone, Arbitrary)]
pub struct Step {
    /// Milliseconds since the previous step.
    pub after_ms: u16,
    /// What happens.
    pub event: Event,
}

/// What can happen to a request, in any order (the timer must ignore steps that do not
/// fit its phase).
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum Event {
    /// The pool said to open a connection.
    Connecting,
    /// A connection is ready.
    Connected,
    /// A retry on a fresh connection.
    Retrying,
    /// The request was written.
    Sent,
    /// Response bytes arrived.
    Read,
    /// The application stopped reading.
    ReadPaused,
    /// The application reads again.
    ReadResumed,
    /// The response was read to its end.
    Done,
    /// The host's timer fired: `handle_timeout(now)`.
    Timeout,
}

/// A timer's settings and the steps to drive it with.
#[derive(Debug, Clone, Arbitrary)]
pub struct TimerInput {
    /// `total`, `connect`, `sock_connect`, `sock_read` in milliseconds (`None`: off).
    pub timeouts: [Option<u16>; 4],
    /// The steps (at most 64 are run).
    pub steps: Vec<Step>,
}

/// The model: the four deadlines as plain fields, changed as the timer's documentation says.
#[derive(Debug, Clone, Copy)]
struct Model {
    settings: [Option<u64>; 4],
    phase: RequestPhase,
    /// `total`, `connect`, `sock_connect`, `sock_read`.
    deadlines: [Option<u64>; 4],
    fired: Option<TimeoutKind>,
}

const TOTAL: usize = 0;
const CONNECT: usize = 1;
const SOCK_CONNECT: usize = 2;
const SOCK_READ: usize = 3;

impl Model {
    fn start(&self, which: usize, now: u64) -> Option<u64> {
        self.settings[which].map(|d| now + d)
    }

    fn step(&mut self, event: Event, now: u64) {
        use RequestPhase::*;
        match (event, self.phase) {
            (Event::Connecting, Acquiring) => {
                self.phase = Connecting;
                self.deadlines[SOCK_CONNECT] = self.start(SOCK_CONNECT, now);
            }
            (Event::Connected, Acquiring | Connecting) => {
                self.phase = Sending;
                self.deadlines[CONNECT] = None;
                self.deadlines[SOCK_CONNECT] = None;
            }
            (Event::Retrying, Acquiring | Connecting | Sending | Receiving) => {
                self.phase = Acquiring;
                self.deadlines[CONNECT] = self.start(CONNECT, now);
                self.deadlines[SOCK_CONNECT] = None;
                self.deadlines[SOCK_READ] = None;
            }
            (Event::Sent, Sending) => {
                self.phase = Receiving;
                self.deadlines[SOCK_READ] = self.start(SOCK_READ, now);
            }
            (Event::Read | Event::ReadResumed, Receiving) => {
                self.deadlines[SOCK_READ] = self.start(SOCK_READ, now);
            }
            (Event::ReadPaused, _) => self.deadlines[SOCK_READ] = None,
            (Event::Done, _) => {
                self.phase = Done;
                self.deadlines = [None; 4];
            }
            (Event::Timeout, _) => {
                // The most specific due deadline names the timeout.
                let due = |i: usize| self.deadlines[i].is_some_and(|t| t <= now);
                let kind = [
                    (SOCK_CONNECT, TimeoutKind::SockConnect),
                    (CONNECT, TimeoutKind::Connect),
                    (SOCK_READ, TimeoutKind::SockRead),
                    (TOTAL, TimeoutKind::Total),
                ]
                .into_iter()
                .find(|&(i, _)| due(i));
                if let Some((_, kind)) = kind {
                    self.phase = Done;
                    self.deadlines = [None; 4];
                    self.fired = Some(kind);
                }
            }
            _ => {}
        }
    }

    fn earliest(&self) -> Option<u64> {
        self.deadlines.into_iter().flatten().min()
    }
}

/// Drives a [`RequestTimer`] and the model with the same steps and compares them. Returns
/// the timeout that fired, if one did.
pub fn check_timer(input: &TimerInput) -> Option<TimeoutKind> {
    let ms = |n: Option<u16>| n.map(u64::from);
    let settings = input.timeouts.map(ms);
    let duration = |i: usize| settings[i].map(Duration::from_millis);
    let timeouts = ClientTimeouts::NONE
        .with_total(duration(TOTAL))
        .with_connect(duration(CONNECT))
        .with_sock_connect(duration(SOCK_CONNECT))
        .with_sock_read(duration(SOCK_READ));
    let mut now = 1_000u64;
    let mut timer = RequestTimer::new(timeouts, Instant::from_millis(now));
    let mut model = Model {
        settings,
        phase: RequestPhase::Acquiring,
        deadlines: [
            settings[TOTAL].map(|d| now + d),
            settings[CONNECT].map(|d| now + d),
            None,
            None,
        ],
        fired: None,
    };
    for step in input.steps.iter().take(64) {
        now += u64::from(step.after_ms);
        let at = Instant::from_millis(now);
        let earliest = timer.poll_timeout();
        match step.event {
            Event::Connecting => timer.connecting(at),
            Event::Connected => timer.connected(),
            Event::Retrying => timer.retrying(at),
            Event::Sent => timer.sent(at),
            Event::Read => timer.read(at),
            Event::ReadPaused => timer.read_paused(),
            Event::ReadResumed => timer.read_resumed(at),
            Event::Done => timer.done(),
            Event::Timeout => {
                let fired = timer.handle_timeout(at);
                // A timeout fires exactly when the earliest deadline has come.
                assert_eq!(
                    fired.is_some(),
                    earliest.is_some_and(|t| t <= at),
                    "{step:?} at {now}: earliest {earliest:?}"
                );
                if fired.is_some() {
                    assert_eq!(timer.poll_timeout(), None, "no deadline after a timeout");
                    assert_eq!(timer.fired(), fired);
                }
            }
        }
        model.step(step.event, now);
        assert_eq!(timer.phase(), model.phase, "{step:?} at {now}");
        assert_eq!(
            timer.poll_timeout(),
            model.earliest().map(Instant::from_millis),
            "{step:?} at {now}: {model:?}"
        );
        assert_eq!(timer.fired(), model.fired, "{step:?} at {now}");
    }
    timer.fired()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(after_ms: u16, event: Event) -> Step {
        Step { after_ms, event }
    }

    const TIMEOUTS: [Option<u16>; 4] = [Some(500), Some(100), Some(50), Some(80)];

    #[test]
    fn a_request_that_reads_in_time_has_no_timeout() {
        let fired = check_timer(&TimerInput {
            timeouts: TIMEOUTS,
            steps: vec![
                step(10, Event::Connecting),
                step(30, Event::Connected),
                step(5, Event::Sent),
                step(70, Event::Timeout),
                step(5, Event::Read),
                step(75, Event::Timeout),
                step(0, Event::Done),
                step(1_000, Event::Timeout),
            ],
        });
        assert_eq!(fired, None);
    }

    #[test]
    fn each_timeout_is_named_by_its_phase() {
        use Event::*;
        let cases = [
            (
                vec![step(0, Connecting), step(60, Timeout)],
                TimeoutKind::SockConnect,
            ),
            (vec![step(120, Timeout)], TimeoutKind::Connect),
            (
                vec![step(0, Connected), step(0, Sent), step(90, Timeout)],
                TimeoutKind::SockRead,
            ),
            (
                vec![
                    step(0, Connected),
                    step(0, Sent),
                    step(0, ReadPaused),
                    step(600, Timeout),
                ],
                TimeoutKind::Total,
            ),
            (
                vec![step(40, Connecting), step(0, Retrying), step(110, Timeout)],
                TimeoutKind::Connect,
            ),
        ];
        for (steps, kind) in cases {
            let fired = check_timer(&TimerInput {
                timeouts: TIMEOUTS,
                steps,
            });
            assert_eq!(fired, Some(kind));
        }
    }
}
