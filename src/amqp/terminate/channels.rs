//! A session's channels by number, in a sorted vector. Almost every client opens one or two
//! channels; a `BTreeMap` allocates a node with room for eleven `Channel`s (about 3 KB) for
//! the first one, which was a fifth of what an idle terminated client cost. Channels open
//! and close rarely, so an insert that shifts the vector costs nothing that matters; finding
//! one is a binary search.

use std::ops::Index;

use super::channel::Channel;

#[derive(Debug, Default)]
pub struct Channels(Vec<(u16, Channel)>);

impl Channels {
    fn position(&self, number: u16) -> Result<usize, usize> {
        self.0.binary_search_by_key(&number, |(n, _)| *n)
    }

    pub fn get(&self, number: &u16) -> Option<&Channel> {
        self.position(*number).ok().map(|i| &self.0[i].1)
    }

    pub fn get_mut(&mut self, number: &u16) -> Option<&mut Channel> {
        self.position(*number).ok().map(|i| &mut self.0[i].1)
    }

    /// The channel `number`, a new one if there is none.
    pub fn get_or_default(&mut self, number: u16) -> &mut Channel {
        let i = match self.position(number) {
            Ok(i) => i,
            Err(i) => {
                if self.0.capacity() == 0 {
                    // Room for exactly the first channel, not the four a vector starts with.
                    self.0.reserve_exact(1);
                }
                self.0.insert(i, (number, Channel::default()));
                i
            }
        };
        &mut self.0[i].1
    }

    pub fn remove(&mut self, number: &u16) -> Option<Channel> {
        self.position(*number).ok().map(|i| self.0.remove(i).1)
    }

    pub fn keys(&self) -> impl Iterator<Item = &u16> {
        self.0.iter().map(|(n, _)| n)
    }

    pub fn values(&self) -> impl Iterator<Item = &Channel> {
        self.0.iter().map(|(_, c)| c)
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Channel> {
        self.0.iter_mut().map(|(_, c)| c)
    }

    /// In channel-number order, as replay wants them.
    pub fn iter(&self) -> impl Iterator<Item = (&u16, &Channel)> {
        self.0.iter().map(|(n, c)| (n, c))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&u16, &mut Channel)> {
        self.0.iter_mut().map(|(n, c)| (&*n, c))
    }
}

impl Index<&u16> for Channels {
    type Output = Channel;

    fn index(&self, number: &u16) -> &Channel {
        match self.get(number) {
            Some(c) => c,
            None => panic!("no channel {number}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_in_number_order_whatever_the_order_of_opening() {
        let mut map = Channels::default();
        for n in [5, 1, 9, 3] {
            map.get_or_default(n).tx = n == 9;
        }
        assert_eq!(map.keys().copied().collect::<Vec<_>>(), [1, 3, 5, 9]);
        assert!(map.get(&9).is_some_and(|c| c.tx));
        assert!(map.remove(&3).is_some());
        assert!(map.remove(&3).is_none());
        assert_eq!(map.keys().copied().collect::<Vec<_>>(), [1, 5, 9]);
        assert!(!map[&5].tx);
        map.get_or_default(9).tx = false;
        assert_eq!(map.values().filter(|c| c.tx).count(), 0);
    }

    #[test]
    fn the_first_channel_takes_room_for_one() {
        let mut map = Channels::default();
        map.get_or_default(1);
        assert_eq!(map.0.capacity(), 1);
    }
}
