//! A receiver's bounded queue: the evaluator pushes without ever waiting,
//! the receiver's thread pops. Full, the oldest request goes (a newer one
//! says more about what fires now), and the caller counts it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

pub(super) struct Queue<T> {
    state: Mutex<State<T>>,
    wake: Condvar,
    cap: usize,
}

struct State<T> {
    items: VecDeque<T>,
    stopped: bool,
}

impl<T> Queue<T> {
    pub(super) fn new(cap: usize) -> Self {
        Queue {
            state: Mutex::new(State {
                items: VecDeque::new(),
                stopped: false,
            }),
            wake: Condvar::new(),
            cap: cap.max(1),
        }
    }

    /// Appends `item`; returns the oldest one if the queue was full (it is
    /// out of the queue then) and the length after the push. Once stopped,
    /// nothing is kept.
    pub(super) fn push(&self, item: T) -> (Option<T>, usize) {
        let mut s = self.state.lock();
        if s.stopped {
            return (None, 0);
        }
        let dropped = if s.items.len() >= self.cap {
            s.items.pop_front()
        } else {
            None
        };
        s.items.push_back(item);
        let len = s.items.len();
        drop(s);
        self.wake.notify_one();
        (dropped, len)
    }

    pub(super) fn cap(&self) -> usize {
        self.cap
    }

    /// The oldest item and the length left, waiting for one; `None` once
    /// stopped (what is left in the queue is not handed out).
    pub(super) fn pop(&self) -> Option<(T, usize)> {
        let mut s = self.state.lock();
        loop {
            if s.stopped {
                return None;
            }
            if let Some(item) = s.items.pop_front() {
                let len = s.items.len();
                return Some((item, len));
            }
            self.wake.wait(&mut s);
        }
    }

    /// Sleeps for `d` unless stopped meanwhile; true if stopped.
    pub(super) fn sleep_unless_stopped(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        let mut s = self.state.lock();
        while !s.stopped {
            if self.wake.wait_until(&mut s, until).timed_out() {
                break;
            }
        }
        s.stopped
    }

    #[cfg(test)]
    pub(super) fn is_stopped(&self) -> bool {
        self.state.lock().stopped
    }

    /// Wakes the consumer for good; returns how many items were left.
    pub(super) fn stop(&self) -> usize {
        let mut s = self.state.lock();
        s.stopped = true;
        let left = s.items.len();
        s.items.clear();
        drop(s);
        self.wake.notify_all();
        left
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn full_queue_drops_the_oldest() {
        let q = Queue::new(2);
        assert_eq!(q.push(1), (None, 1));
        assert_eq!(q.push(2), (None, 2));
        assert_eq!(q.push(3), (Some(1), 2));
        assert_eq!(q.pop(), Some((2, 1)));
        assert_eq!(q.pop(), Some((3, 0)));
    }

    #[test]
    fn stop_wakes_a_waiting_consumer_and_a_sleeper() {
        let q = Arc::new(Queue::<u32>::new(4));
        let q2 = q.clone();
        let popper = std::thread::spawn(move || q2.pop());
        let q3 = q.clone();
        let sleeper = std::thread::spawn(move || {
            let t = Instant::now();
            (
                q3.sleep_unless_stopped(Duration::from_secs(30)),
                t.elapsed(),
            )
        });
        std::thread::sleep(Duration::from_millis(50));
        q.push(7);
        q.stop();
        // The popper may have taken the 7 before the stop; never blocks.
        let got = popper.join().unwrap();
        assert!(got.is_none() || got == Some((7, 0)));
        let (stopped, took) = sleeper.join().unwrap();
        assert!(stopped);
        assert!(took < Duration::from_secs(5), "{took:?}");
        assert!(q.is_stopped());
        assert_eq!(q.pop(), None);
        assert_eq!(q.push(8), (None, 0), "nothing kept once stopped");
        assert_eq!(q.pop(), None);
    }
}
