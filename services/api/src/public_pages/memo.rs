//! Documents rendered on request (an incident's page), kept for the next
//! reader — within fixed bounds.
//!
//! Everything else a page serves is rendered once into its snapshot; an
//! incident's page is rendered when someone asks for it, because a page
//! holds up to two hundred incidents and most are never read. Such a cache
//! is keyed by something the request names, so it must never grow with what
//! requests name: a loop over random ids would otherwise fill the process.
//!
//! - Only documents that exist are kept: an id the snapshot does not hold is
//!   answered 404 and leaves nothing behind.
//! - At most `per_page` documents per page, and `max_bytes` in all: past
//!   either, the least recently read document goes (of the same page for the
//!   first bound; of the page read least recently for the second). One page's
//!   readers can therefore never push every other page out.
//! - A page's documents belong to one snapshot (its `generation`): a newer
//!   snapshot drops them at once, and a render of an older one that finishes
//!   late is not kept.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use hashlink::LinkedHashMap;
use heliograph_domain::PageId;

use super::{Base, Rendered};

/// A document's key within its page: the incident and the base its links use.
pub type MemoKey = (uuid::Uuid, Base);

/// The bounds of the memo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoLimits {
    /// Documents kept per page (`PAGE_CACHE_MEMO_PER_PAGE`).
    pub per_page: usize,
    /// Bytes kept in all, bodies and their gzipped copies counted
    /// (`PAGE_CACHE_MEMO_MAX_MB`).
    pub max_bytes: usize,
}

/// What the memo holds now, for `/metrics` and the tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoUse {
    /// Documents kept.
    pub entries: usize,
    /// Their weight in bytes (see [`weight`]).
    pub bytes: usize,
    /// Pages with at least one document kept.
    pub pages: usize,
}

/// Per-entry bookkeeping on top of the bytes themselves: the key, the
/// `Rendered` value and the maps' links, rounded up.
const ENTRY_OVERHEAD: usize = 256;

/// What a kept document costs.
#[must_use]
pub fn weight(r: &Rendered) -> usize {
    r.body.len()
        + r.etag.len()
        + r.gzip
            .as_ref()
            .map_or(0, |(gz, etag)| gz.len() + etag.len())
        + ENTRY_OVERHEAD
}

/// See the module's documentation.
pub struct Memo {
    limits: MemoLimits,
    inner: Mutex<Inner>,
    evictions: AtomicU64,
}

#[derive(Default)]
struct Inner {
    /// Pages, the one read least recently first.
    pages: LinkedHashMap<PageId, PageMemo>,
    entries: usize,
    bytes: usize,
}

struct PageMemo {
    generation: u64,
    /// Documents, the one read least recently first.
    docs: LinkedHashMap<MemoKey, Rendered>,
}

impl Inner {
    fn take(&mut self, r: &Rendered) {
        self.entries -= 1;
        self.bytes -= weight(r);
    }

    /// Drops a page's documents.
    fn drop_page(&mut self, page: &PageId) {
        if let Some(memo) = self.pages.remove(page) {
            for r in memo.docs.values() {
                self.entries -= 1;
                self.bytes -= weight(r);
            }
        }
    }
}

impl Memo {
    /// An empty memo with these bounds.
    #[must_use]
    pub fn new(limits: MemoLimits) -> Self {
        Self {
            limits,
            inner: Mutex::new(Inner::default()),
            evictions: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The document kept for this key of this snapshot of the page, if any
    /// (it becomes the page's most recently read).
    pub fn get(&self, page: PageId, generation: u64, key: &MemoKey) -> Option<Rendered> {
        let mut inner = self.lock();
        let memo = inner.pages.to_back(&page)?;
        if memo.generation != generation {
            return None;
        }
        memo.docs.to_back(key).cloned()
    }

    /// Keeps a document of this snapshot of the page, evicting what the
    /// bounds require. A document heavier than the whole budget is not kept.
    pub fn insert(&self, page: PageId, generation: u64, key: MemoKey, rendered: Rendered) {
        let w = weight(&rendered);
        if self.limits.per_page == 0 || w > self.limits.max_bytes {
            return;
        }
        let mut evicted = 0;
        let mut inner = self.lock();
        match inner.pages.get(&page).map(|m| m.generation) {
            Some(kept) if kept > generation => return,
            Some(kept) if kept < generation => inner.drop_page(&page),
            _ => {}
        }
        let mut memo = inner.pages.remove(&page).unwrap_or_else(|| PageMemo {
            generation,
            docs: LinkedHashMap::new(),
        });
        if let Some(old) = memo.docs.remove(&key) {
            inner.take(&old);
        }
        while memo.docs.len() >= self.limits.per_page {
            let Some((_, old)) = memo.docs.pop_front() else {
                break;
            };
            inner.take(&old);
            evicted += 1;
        }
        memo.docs.insert(key, rendered);
        inner.entries += 1;
        inner.bytes += w;
        // Other pages' documents go first, the page read least recently
        // first; this page's own (its newest last) only if it is alone.
        while inner.bytes > self.limits.max_bytes {
            let Some((other, mut other_memo)) = inner.pages.pop_front() else {
                break;
            };
            if let Some((_, old)) = other_memo.docs.pop_front() {
                inner.take(&old);
                evicted += 1;
            }
            if !other_memo.docs.is_empty() {
                inner.pages.insert(other, other_memo);
                inner.pages.to_front(&other);
            }
        }
        while inner.bytes > self.limits.max_bytes {
            let Some((_, old)) = memo.docs.pop_front() else {
                break;
            };
            inner.take(&old);
            evicted += 1;
        }
        if !memo.docs.is_empty() {
            inner.pages.insert(page, memo);
        }
        drop(inner);
        if evicted > 0 {
            self.evictions.fetch_add(evicted, Ordering::Relaxed);
        }
    }

    /// Drops a page's documents (its snapshot was removed).
    pub fn forget(&self, page: &PageId) {
        self.lock().drop_page(page);
    }

    /// Drops a page's documents rendered from snapshots older than
    /// `generation` (the one now served).
    pub fn forget_older(&self, page: &PageId, generation: u64) {
        let mut inner = self.lock();
        if inner
            .pages
            .get(page)
            .is_some_and(|m| m.generation < generation)
        {
            inner.drop_page(page);
        }
    }

    /// What is held now.
    #[must_use]
    pub fn usage(&self) -> MemoUse {
        let inner = self.lock();
        MemoUse {
            entries: inner.entries,
            bytes: inner.bytes,
            pages: inner.pages.len(),
        }
    }

    /// Documents evicted by the bounds since start.
    #[must_use]
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(n: u8) -> Rendered {
        // Incompressible enough and under the gzip threshold: weight is exact.
        Rendered::new(vec![n; 100], "text/html; charset=utf-8")
    }

    fn key(n: u128) -> MemoKey {
        (uuid::Uuid::from_u128(n), Base::Host)
    }

    fn page(n: u128) -> PageId {
        PageId::from(uuid::Uuid::from_u128(n))
    }

    #[test]
    fn a_page_keeps_its_most_recently_read_documents_up_to_its_bound() {
        let memo = Memo::new(MemoLimits {
            per_page: 2,
            max_bytes: 1 << 20,
        });
        let p = page(1);
        memo.insert(p, 1, key(1), doc(1));
        memo.insert(p, 1, key(2), doc(2));
        assert!(memo.get(p, 1, &key(1)).is_some(), "1 is now read last");
        memo.insert(p, 1, key(3), doc(3));
        assert!(
            memo.get(p, 1, &key(2)).is_none(),
            "2 was read least recently"
        );
        assert!(memo.get(p, 1, &key(1)).is_some());
        assert!(memo.get(p, 1, &key(3)).is_some());
        assert_eq!(memo.usage().entries, 2);
        assert_eq!(memo.usage().bytes, 2 * weight(&doc(1)));
        assert_eq!(memo.evictions(), 1);
        // The same key again replaces, and counts once.
        memo.insert(p, 1, key(3), doc(3));
        assert_eq!(memo.usage().entries, 2);
    }

    #[test]
    fn past_the_total_bound_the_page_read_least_recently_gives_way() {
        let one = weight(&doc(0));
        let memo = Memo::new(MemoLimits {
            per_page: 10,
            max_bytes: 3 * one,
        });
        let (a, b) = (page(1), page(2));
        memo.insert(a, 1, key(1), doc(1));
        memo.insert(a, 1, key(2), doc(2));
        memo.insert(b, 1, key(3), doc(3));
        memo.insert(b, 1, key(4), doc(4));
        let usage = memo.usage();
        assert_eq!((usage.entries, usage.bytes), (3, 3 * one));
        assert!(memo.get(a, 1, &key(1)).is_none(), "a's oldest went first");
        assert!(memo.get(a, 1, &key(2)).is_some());
        // Now b is the page read least recently.
        memo.insert(a, 1, key(5), doc(5));
        assert!(memo.get(b, 1, &key(3)).is_none());
        assert!(memo.get(b, 1, &key(4)).is_some());
        assert_eq!(memo.usage().bytes, 3 * one);
        // A page alone past the bound evicts its own oldest.
        let alone = Memo::new(MemoLimits {
            per_page: 10,
            max_bytes: 2 * one,
        });
        for n in 0..5 {
            alone.insert(a, 1, key(n), doc(0));
        }
        assert_eq!(alone.usage().entries, 2);
        assert!(alone.get(a, 1, &key(4)).is_some());
        assert!(alone.get(a, 1, &key(3)).is_some());
        // Nothing heavier than the whole budget is kept.
        let small = Memo::new(MemoLimits {
            per_page: 10,
            max_bytes: one - 1,
        });
        small.insert(a, 1, key(1), doc(1));
        assert_eq!(small.usage(), MemoUse::default());
    }

    #[test]
    fn a_newer_snapshot_replaces_a_pages_documents_and_an_older_one_adds_none() {
        let memo = Memo::new(MemoLimits {
            per_page: 10,
            max_bytes: 1 << 20,
        });
        let p = page(1);
        memo.insert(p, 2, key(1), doc(1));
        memo.insert(p, 1, key(2), doc(2));
        assert!(memo.get(p, 1, &key(2)).is_none());
        assert!(memo.get(p, 2, &key(2)).is_none());
        assert_eq!(memo.usage().entries, 1);
        assert!(memo.get(p, 3, &key(1)).is_none(), "another snapshot's");
        memo.insert(p, 3, key(3), doc(3));
        assert!(memo.get(p, 2, &key(1)).is_none());
        assert_eq!(memo.usage().entries, 1);
        memo.forget_older(&p, 3);
        assert_eq!(memo.usage().entries, 1, "the snapshot served keeps its own");
        memo.forget_older(&p, 4);
        assert_eq!(memo.usage(), MemoUse::default());
        memo.insert(p, 4, key(3), doc(3));
        memo.forget(&p);
        assert_eq!(memo.usage(), MemoUse::default());
    }
}
