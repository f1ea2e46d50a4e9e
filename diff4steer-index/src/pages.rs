//! Growable arrays on transparent huge pages, for the data that graph search reads at random.
//!
//! An HNSW query reads a few hundred vectors and a few dozen link lists scattered over the whole
//! store (tens of MB at 100k × 128). With 4 KiB pages nearly every one of those reads also misses
//! the TLB and walks the page tables, which is as slow as the read itself. [`PageVec`] keeps a
//! large array in an anonymous memory map advised for transparent huge pages (2 MiB on x86-64
//! Linux), so a few dozen TLB entries cover all of it; on 55,525 × 128 that took one-thread HNSW
//! searches from 33.0 to 29.0 µs at ef 16 (BENCHMARKS.md). hnswlib and faiss keep their arrays on
//! ordinary pages; numpy advises its large arrays the same way.
//!
//! Small arrays, systems without the advice, and maps the OS refuses stay in an ordinary `Vec`:
//! the contents, and every result computed from them, are the same either way.

use std::fmt;
use std::ops::{Deref, DerefMut};

use memmap2::MmapMut;
use pulp::bytemuck::{self, Pod};

/// Arrays smaller than this stay on the heap: a huge page is 2 MiB, and a map costs system calls.
const MAP_FROM_BYTES: usize = 4 << 20;

/// A mapped array's capacity grows in whole huge pages.
const HUGE_PAGE_BYTES: usize = 2 << 20;

/// A `Vec`-like array of plain values that moves to a huge-page memory map once it is large
/// (see the module documentation). Dereferences to a slice.
pub(crate) struct PageVec<T: Pod> {
    storage: Storage<T>,
}

/// Where the values live.
enum Storage<T> {
    /// An ordinary heap vector (small arrays, or when mapping failed).
    Heap(Vec<T>),
    /// The first `len` values of an anonymous map, whose size is the capacity.
    Mapped { map: MmapMut, len: usize },
}

impl<T: Pod> PageVec<T> {
    /// An empty array.
    pub(crate) fn new() -> Self {
        Self {
            storage: Storage::Heap(Vec::new()),
        }
    }

    /// An array holding `values`.
    pub(crate) fn from_slice(values: &[T]) -> Self {
        let mut array = Self::new();
        array.extend_from_slice(values);
        array
    }

    /// Whether the values live in a memory map (for tests).
    #[cfg(test)]
    fn is_mapped(&self) -> bool {
        matches!(self.storage, Storage::Mapped { .. })
    }

    /// Appends `values`.
    pub(crate) fn extend_from_slice(&mut self, values: &[T]) {
        let start = self.len();
        self.grow_to(start + values.len(), T::zeroed());
        self[start..].copy_from_slice(values);
    }

    /// Appends `count` copies of `value`.
    pub(crate) fn extend_with(&mut self, count: usize, value: T) {
        let len = self.len();
        self.grow_to(len + count, value);
    }

    /// Lengthens the array to `new_len` (at least its length), filling with `value`; moves it to a
    /// huge-page map when it becomes large, and grows a map by doubling.
    fn grow_to(&mut self, new_len: usize, value: T) {
        let size = std::mem::size_of::<T>();
        let bytes = new_len.saturating_mul(size);
        let capacity = match &self.storage {
            Storage::Heap(_) if bytes >= MAP_FROM_BYTES => Some(bytes),
            Storage::Mapped { map, .. } if bytes > map.len() => {
                Some(bytes.max(map.len().saturating_mul(2)))
            }
            _ => None,
        };
        if let Some(capacity) = capacity {
            let len = self.len();
            match map_with(&self[..], capacity) {
                Some(map) => self.storage = Storage::Mapped { map, len },
                // The OS refused the map: the values stay on (or return to) the heap.
                None => {
                    if let Storage::Mapped { .. } = self.storage {
                        self.storage = Storage::Heap(self.to_vec());
                    }
                }
            }
        }
        match &mut self.storage {
            Storage::Heap(vec) => vec.resize(new_len, value),
            Storage::Mapped { map, len } => {
                let values: &mut [T] = bytemuck::cast_slice_mut(&mut map[..new_len * size]);
                values[*len..].fill(value);
                *len = new_len;
            }
        }
    }
}

/// A fresh anonymous map of at least `bytes` (rounded up to whole huge pages), advised for huge
/// pages before its first touch, holding a copy of `values`; `None` if the OS refuses the map.
fn map_with<T: Pod>(values: &[T], bytes: usize) -> Option<MmapMut> {
    let capacity = bytes
        .div_ceil(HUGE_PAGE_BYTES)
        .checked_mul(HUGE_PAGE_BYTES)?;
    let mut map = MmapMut::map_anon(capacity).ok()?;
    // A hint: kernels without transparent huge pages refuse it, and the map still works.
    #[cfg(target_os = "linux")]
    let _ = map.advise(memmap2::Advice::HugePage);
    let old: &[u8] = bytemuck::cast_slice(values);
    map[..old.len()].copy_from_slice(old);
    Some(map)
}

impl<T: Pod> Deref for PageVec<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match &self.storage {
            Storage::Heap(vec) => vec,
            Storage::Mapped { map, len } => {
                bytemuck::cast_slice(&map[..len * std::mem::size_of::<T>()])
            }
        }
    }
}

impl<T: Pod> DerefMut for PageVec<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        match &mut self.storage {
            Storage::Heap(vec) => vec,
            Storage::Mapped { map, len } => {
                bytemuck::cast_slice_mut(&mut map[..*len * std::mem::size_of::<T>()])
            }
        }
    }
}

impl<T: Pod> From<Vec<T>> for PageVec<T> {
    /// Keeps a small vector as it is; copies a large one into a huge-page map.
    fn from(vec: Vec<T>) -> Self {
        if std::mem::size_of_val(vec.as_slice()) < MAP_FROM_BYTES {
            Self {
                storage: Storage::Heap(vec),
            }
        } else {
            Self::from_slice(&vec)
        }
    }
}

impl<T: Pod> Default for PageVec<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Pod> Clone for PageVec<T> {
    fn clone(&self) -> Self {
        Self::from_slice(self)
    }
}

impl<T: Pod + PartialEq> PartialEq for PageVec<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for PageVec<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A long run of appends and writes gives exactly what a `Vec` given the same operations
    /// holds, across the move to a map and the map's growth; clones and `From` agree too.
    #[test]
    fn holds_what_a_vec_holds_across_the_move_to_a_map_and_its_growth() {
        let mut array = PageVec::<u32>::new();
        let mut reference = Vec::<u32>::new();
        let mut next = 1u32;
        // 3.5 M values (14 MB): past MAP_FROM_BYTES, then doubled twice.
        while reference.len() < 3_500_000 {
            let run: Vec<u32> = (0..(next % 9973) as usize)
                .map(|i| next.wrapping_mul(2_654_435_761).wrapping_add(i as u32))
                .collect();
            array.extend_from_slice(&run);
            reference.extend_from_slice(&run);
            array.extend_with(17, next);
            reference.resize(reference.len() + 17, next);
            let at = (next as usize * 7919) % reference.len();
            array[at] = next;
            reference[at] = next;
            next += 1;
        }
        assert!(array.is_mapped());
        assert_eq!(&*array, reference.as_slice());
        let copy = array.clone();
        assert!(copy.is_mapped());
        assert_eq!(copy, array);
        let converted = PageVec::from(reference.clone());
        assert_eq!(&*converted, reference.as_slice());
        let small = PageVec::from(vec![1.5f32, -2.0]);
        assert!(!small.is_mapped());
        assert_eq!(&*small, &[1.5, -2.0]);
        assert_eq!(format!("{small:?}"), "[1.5, -2.0]");
    }
}
