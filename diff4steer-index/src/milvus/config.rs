//! Where a [`super::MilvusIndex`] connects and which Milvus index it builds.

use std::collections::HashMap;
use std::time::Duration;

use crate::{IndexError, Result};

/// The Milvus index type built on the vector field, with its build and search parameters
/// (Milvus' names: `M`, `efConstruction` and `ef` for HNSW, `nlist` and `nprobe` for IVF).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MilvusIndexKind {
    /// Exact search (Milvus `FLAT`).
    Flat,
    /// HNSW graph (Malkov & Yashunin 2018): `m` links per node, `ef_construction` while building,
    /// `ef` candidates per search (at least k; raised to k when smaller).
    Hnsw {
        /// Links per node (`M`).
        m: usize,
        /// Candidate list while building (`efConstruction`).
        ef_construction: usize,
        /// Candidate list while searching (`ef`).
        ef: usize,
    },
    /// Inverted file with flat lists (`IVF_FLAT`): `nlist` clusters, `nprobe` searched.
    IvfFlat {
        /// Clusters (`nlist`).
        nlist: usize,
        /// Clusters searched per query (`nprobe`).
        nprobe: usize,
    },
}

impl MilvusIndexKind {
    /// HNSW with M = 16, efConstruction = 200, ef = 128.
    pub const HNSW: MilvusIndexKind = MilvusIndexKind::Hnsw {
        m: 16,
        ef_construction: 200,
        ef: 128,
    };

    /// Milvus' name of the index type.
    pub fn milvus_name(&self) -> &'static str {
        match self {
            MilvusIndexKind::Flat => "FLAT",
            MilvusIndexKind::Hnsw { .. } => "HNSW",
            MilvusIndexKind::IvfFlat { .. } => "IVF_FLAT",
        }
    }

    /// Parameters of the index build.
    pub(crate) fn build_params(&self) -> HashMap<String, String> {
        match *self {
            MilvusIndexKind::Flat => HashMap::new(),
            MilvusIndexKind::Hnsw {
                m, ef_construction, ..
            } => HashMap::from([
                ("M".to_owned(), m.to_string()),
                ("efConstruction".to_owned(), ef_construction.to_string()),
            ]),
            MilvusIndexKind::IvfFlat { nlist, .. } => {
                HashMap::from([("nlist".to_owned(), nlist.to_string())])
            }
        }
    }

    /// Parameters of a search for `k` hits.
    pub(crate) fn search_params(&self, k: usize) -> HashMap<String, String> {
        match *self {
            MilvusIndexKind::Flat => HashMap::new(),
            MilvusIndexKind::Hnsw { ef, .. } => {
                HashMap::from([("ef".to_owned(), ef.max(k).to_string())])
            }
            MilvusIndexKind::IvfFlat { nprobe, .. } => {
                HashMap::from([("nprobe".to_owned(), nprobe.to_string())])
            }
        }
    }

    /// Parses `flat`, `hnsw`, `hnsw:M:EF_CONSTRUCTION:EF`, `ivf:NLIST:NPROBE`.
    ///
    /// # Errors
    /// [`IndexError::InvalidParameter`] for another name or a parameter that is not a positive
    /// integer.
    pub fn parse(text: &str) -> Result<Self> {
        let parts: Vec<&str> = text.split(':').collect();
        let number = |s: &str| -> Result<usize> {
            s.parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| IndexError::InvalidParameter {
                    name: "milvus index",
                    reason: format!("`{s}` in `{text}` is not a positive integer"),
                })
        };
        match parts.as_slice() {
            ["flat"] => Ok(MilvusIndexKind::Flat),
            ["hnsw"] => Ok(MilvusIndexKind::HNSW),
            ["hnsw", m, c, e] => Ok(MilvusIndexKind::Hnsw {
                m: number(m)?,
                ef_construction: number(c)?,
                ef: number(e)?,
            }),
            ["ivf", n, p] => Ok(MilvusIndexKind::IvfFlat {
                nlist: number(n)?,
                nprobe: number(p)?,
            }),
            _ => Err(IndexError::InvalidParameter {
                name: "milvus index",
                reason: format!(
                    "`{text}`: expected flat, hnsw, hnsw:M:EF_CONSTRUCTION:EF or ivf:NLIST:NPROBE"
                ),
            }),
        }
    }
}

/// What a search waits for before it reads: Milvus' consistency levels, as the adapter uses them.
///
/// Milvus stamps every write with a timestamp; a query node applies writes as it consumes its
/// insert channels and advances its "safe" timestamp once per time tick (200 ms by default). A
/// *strong* search waits until that safe timestamp passes the search's own, so it sees every
/// earlier write but costs up to one tick; a *bounded* search waits only for the state of a few
/// seconds ago (the server's `common.gracefulTime`, 5 s by default), which is already safe, so it
/// does not wait, and may miss rows written in the last moments (until they are consumed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MilvusReads {
    /// Strong while this handle's own last write is recent ([`MilvusReads::RECENT`]), bounded
    /// otherwise: a handle that adds rows and searches sees them (read-your-writes, as the local
    /// indexes), and a handle that serves a loaded catalogue does not pay the tick.
    #[default]
    Automatic,
    /// Every search sees every write made before it, by anyone (up to one time tick of latency).
    Strong,
    /// No search waits; rows written in the last few seconds may be missing from results.
    Bounded,
}

impl MilvusReads {
    /// How long after a write [`MilvusReads::Automatic`] keeps reading strongly: twice Milvus'
    /// default staleness bound, after which a bounded search is sure to see the write.
    pub const RECENT: std::time::Duration = std::time::Duration::from_secs(10);
}

/// Where the collection lives and how to talk to it.
#[derive(Debug, Clone, PartialEq)]
pub struct MilvusConfig {
    /// The proxy's URL, e.g. `http://127.0.0.1:19530`.
    pub url: String,
    /// The collection's name (letters, digits and underscores, starting with a letter or `_`).
    pub collection: String,
    /// Limit of every call (connecting included): past it the call fails with
    /// [`IndexError::Timeout`] instead of waiting.
    pub timeout: Duration,
    /// Index built on a new collection; its search parameters are used on an existing one too.
    pub index: MilvusIndexKind,
    /// Rows per insert request.
    pub insert_batch: usize,
    /// Shards of a new collection (its insert channels, spread over a cluster's data nodes); 1 by
    /// default, which is what a standalone server needs.
    pub shards: usize,
    /// In-memory replicas the collection is loaded with (each on its own query nodes, for query
    /// throughput and availability); 1 by default, the most a standalone server holds. Opening a
    /// collection loaded with another number is refused by the server.
    pub replicas: usize,
    /// What searches wait for ([`MilvusReads::Automatic`] by default).
    pub reads: MilvusReads,
}

impl MilvusConfig {
    /// `url` and `collection` with a 5 s timeout, HNSW ([`MilvusIndexKind::HNSW`]) and inserts
    /// of 5,000 rows.
    pub fn new(url: impl Into<String>, collection: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            collection: collection.into(),
            timeout: Duration::from_secs(5),
            index: MilvusIndexKind::HNSW,
            insert_batch: 5_000,
            shards: 1,
            replicas: 1,
            reads: MilvusReads::Automatic,
        }
    }

    /// The same with another index kind.
    pub fn with_index(mut self, index: MilvusIndexKind) -> Self {
        self.index = index;
        self
    }

    /// The same with another timeout per call.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// With `shards` shards for a new collection (see [`MilvusConfig::shards`]).
    pub fn with_shards(mut self, shards: usize) -> Self {
        self.shards = shards;
        self
    }

    /// Loaded with `replicas` in-memory replicas (see [`MilvusConfig::replicas`]).
    pub fn with_replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas;
        self
    }

    /// Searches that wait as `reads` says (see [`MilvusReads`]).
    pub fn with_reads(mut self, reads: MilvusReads) -> Self {
        self.reads = reads;
        self
    }

    /// Checks the name, the timeout and the batch size.
    pub(crate) fn check(&self) -> Result<()> {
        let name_ok = self
            .collection
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && self
                .collection
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !name_ok {
            return Err(IndexError::InvalidParameter {
                name: "collection",
                reason: format!(
                    "`{}`: letters, digits and underscores, starting with a letter or `_`",
                    self.collection
                ),
            });
        }
        if self.timeout.is_zero() {
            return Err(IndexError::InvalidParameter {
                name: "timeout",
                reason: "must be positive".into(),
            });
        }
        for (name, value) in [("shards", self.shards), ("replicas", self.replicas)] {
            if !(1..=64).contains(&value) {
                return Err(IndexError::InvalidParameter {
                    name,
                    reason: format!("{value}: Milvus takes 1 to 64"),
                });
            }
        }
        if self.insert_batch == 0 {
            return Err(IndexError::InvalidParameter {
                name: "insert_batch",
                reason: "must be positive".into(),
            });
        }
        Ok(())
    }
}
