//! Counts open connections, in all and per client address, and refuses a
//! new one over either cap. An IPv6 client is counted by its /64 (one
//! host is usually given a whole /64, so counting single addresses would
//! let it open a connection per address).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};

/// Why a connection was refused.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Full {
    /// This client address holds its share already.
    Address,
    /// The server holds all it may.
    Server,
}

#[derive(Default)]
struct Counts {
    total: usize,
    by_client: HashMap<IpAddr, usize>,
}

pub(crate) struct Gate {
    max_total: usize,
    max_per_client: usize,
    counts: Mutex<Counts>,
}

/// One open connection; dropping it gives its place back.
pub(crate) struct Ticket {
    gate: Arc<Gate>,
    client: IpAddr,
}

impl Gate {
    pub(crate) fn new(max_total: usize, max_per_client: usize) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            max_per_client,
            counts: Mutex::default(),
        })
    }

    /// A place for a connection from `peer`, or why there is none.
    pub(crate) fn enter(self: &Arc<Self>, peer: IpAddr) -> Result<Ticket, Full> {
        let client = client_of(peer);
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if counts.total >= self.max_total {
            return Err(Full::Server);
        }
        let mine = counts.by_client.entry(client).or_insert(0);
        if *mine >= self.max_per_client {
            return Err(Full::Address);
        }
        *mine += 1;
        counts.total += 1;
        Ok(Ticket {
            gate: Arc::clone(self),
            client,
        })
    }

    /// Open connections now.
    #[cfg(test)]
    pub(crate) fn open(&self) -> usize {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut counts = self
            .gate
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.by_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                counts.by_client.remove(&self.client);
            }
        }
    }
}

/// The key a peer is counted under: an IPv4 address as it is (also when
/// it arrives IPv4-mapped), an IPv6 address's /64.
fn client_of(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(_) => peer,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_gets_its_share_and_the_server_its_total() {
        let gate = Gate::new(5, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = gate.enter(a).unwrap();
        let _a2 = gate.enter(a).unwrap();
        assert_eq!(gate.enter(a).err(), Some(Full::Address));
        drop(a1);
        let _a3 = gate.enter(a).expect("a place was given back");
        let _b: Vec<_> = (0..2).map(|_| gate.enter(b).unwrap()).collect();
        let c: IpAddr = "10.0.0.3".parse().unwrap();
        let _c = gate.enter(c).unwrap();
        assert_eq!(gate.open(), 5);
        assert_eq!(gate.enter(c).err(), Some(Full::Server));
    }

    #[test]
    fn an_ipv6_host_is_counted_by_its_slash_64() {
        let gate = Gate::new(10, 1);
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let other_in_same_64: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let next_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let _t = gate.enter(one).unwrap();
        assert_eq!(gate.enter(other_in_same_64).err(), Some(Full::Address));
        assert!(gate.enter(next_64).is_ok());
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let _m = gate.enter(mapped).unwrap();
        assert_eq!(
            gate.enter("10.0.0.1".parse().unwrap()).err(),
            Some(Full::Address)
        );
    }
}
