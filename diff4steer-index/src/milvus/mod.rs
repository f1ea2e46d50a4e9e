//! [`MilvusIndex`]: a collection of a Milvus server (standalone or a cluster: both expose the same
//! proxy API) behind [`VectorIndex`], for catalogues that do not fit one machine.
//!
//! The adapter is synchronous, like every index here: it owns a small tokio runtime and runs
//! each call of the official client (`milvus-sdk-rust`, gRPC) to completion within
//! [`MilvusConfig::timeout`], so a server that is down, killed or stuck gives a typed error
//! ([`IndexError::Unreachable`], [`IndexError::Timeout`]), never a hang. Do not call it from
//! inside an async runtime's worker (it blocks).
//!
//! The collection holds two fields: `id` (Int64 primary key, set by the caller) and `vector`
//! (FloatVector of the catalogue's width), with one index on `vector` ([`MilvusIndexKind`]) under
//! the metric matching the [`Similarity`] (IP, COSINE, L2). Scores are converted to "higher is more
//! similar" (L2: minus Milvus' squared distance), as every index here. All seeds of a query batch
//! go in **one** search request. Searches wait as [`MilvusReads`] says: by default strongly (every
//! row added before them is seen) while this handle's own inserts are recent, and with bounded
//! staleness (no wait for the server's time tick) when it serves rows loaded earlier. Counting,
//! id checks and lookups always read strongly.

mod catalogue;
mod config;

use std::collections::HashSet;
use std::future::Future;
use std::time::{Duration, Instant};

use milvus::v2::prelude::{
    ClientV2, CollectionSchema, ConnectConfig, ConsistencyLevel, CreateCollectionRequest,
    CreateIndexRequest, DataType, DescribeCollectionRequest, DescribeIndexRequest,
    DropCollectionRequest, Error as MilvusError, FieldData, FieldSchema, FlushRequest,
    GetLoadStateRequest, HasCollectionRequest, Ids, IndexParam, IndexType, InsertRequest,
    LoadCollectionRequest, LoadState, MetricType, QueryRequest, ReleaseCollectionRequest,
    RetryConfig, SearchRequest, SearchVectors,
};

pub use config::{MilvusConfig, MilvusIndexKind, MilvusReads};

use crate::flat::normalise_rows;
use crate::vector_index::{check_k, check_rows};
use crate::{Hit, IndexError, Result, Similarity, VectorIndex};

/// Milvus' limit on hits per query (`topk`) and on queries per request (`nq`).
const MAX_TOPK: usize = 16_384;
/// Ids per `id in [...]` expression (duplicate checks, lookups).
const IDS_PER_EXPRESSION: usize = 1_000;
/// The field names of a collection this adapter creates.
const ID_FIELD: &str = "id";
const VECTOR_FIELD: &str = "vector";

/// A Milvus collection as a [`VectorIndex`]; see the module docs.
pub struct MilvusIndex {
    runtime: tokio::runtime::Runtime,
    client: ClientV2,
    config: MilvusConfig,
    dim: usize,
    similarity: Similarity,
    id_field: String,
    vector_field: String,
    rows: usize,
    /// The collection's description (where [`MilvusIndex::load_catalogue`] keeps the
    /// catalogue's preprocessor).
    description: String,
    /// Vectors looked up by [`VectorIndex::vector`], kept so the trait can lend them.
    cache: elsa::sync::FrozenMap<u64, Box<[f32]>>,
    /// When this handle last inserted rows ([`MilvusReads::Automatic`] reads strongly after it).
    last_write: Option<Instant>,
}

impl std::fmt::Debug for MilvusIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MilvusIndex")
            .field("url", &self.config.url)
            .field("collection", &self.config.collection)
            .field("dim", &self.dim)
            .field("similarity", &self.similarity)
            .field("rows", &self.rows)
            .finish()
    }
}

impl MilvusIndex {
    /// A connected handle that knows nothing of its collection yet (width 0, no fields).
    fn connected(config: MilvusConfig) -> Result<Self> {
        let (runtime, client) = connect(&config)?;
        Ok(Self {
            runtime,
            client,
            config,
            dim: 0,
            similarity: Similarity::Cosine,
            id_field: String::new(),
            vector_field: String::new(),
            rows: 0,
            description: String::new(),
            cache: elsa::sync::FrozenMap::new(),
            last_write: None,
        })
    }

    /// Creates the collection `config.collection` (width `dim`, metric of `similarity`, index
    /// `config.index`) and loads it, empty.
    ///
    /// # Errors
    /// [`IndexError::Unreachable`] / [`IndexError::Timeout`] when the server does not answer;
    /// [`IndexError::CollectionExists`] when the name is taken; [`IndexError::Remote`] with the
    /// server's message when it refuses; [`IndexError::InvalidParameter`] for a bad name, dim 0
    /// or a zero timeout.
    pub fn create(config: MilvusConfig, dim: usize, similarity: Similarity) -> Result<Self> {
        Self::create_described(config, dim, similarity, String::new())
    }

    /// [`MilvusIndex::create`] with the collection's description set to `description`.
    fn create_described(
        config: MilvusConfig,
        dim: usize,
        similarity: Similarity,
        description: String,
    ) -> Result<Self> {
        config.check()?;
        if dim == 0 || dim > 32_768 {
            return Err(IndexError::InvalidParameter {
                name: "dim",
                reason: format!("{dim}: Milvus takes 1 to 32768"),
            });
        }
        let index = Self {
            dim,
            similarity,
            id_field: ID_FIELD.into(),
            vector_field: VECTOR_FIELD.into(),
            description,
            ..Self::connected(config)?
        };
        if index.exists()? {
            return Err(IndexError::CollectionExists {
                collection: index.config.collection.clone(),
            });
        }
        let name = index.config.collection.clone();
        let schema = CollectionSchema::new()
            .description(index.description.clone())
            .add_field(
                FieldSchema::new()
                    .name(ID_FIELD)
                    .data_type(DataType::Int64)
                    .primary_key(true),
            )
            .add_field(
                FieldSchema::new()
                    .name(VECTOR_FIELD)
                    .data_type(DataType::FloatVector)
                    .dimension(dim as u32),
            );
        let request = CreateCollectionRequest::builder()
            .collection_name(&name)
            .schema(schema)
            .num_shards(index.config.shards as i32)
            .consistency_level(ConsistencyLevel::Strong)
            .build()
            .map_err(|e| index.error("create collection", e))?;
        index.call("create collection", |c| async move {
            c.create_collection(request).await
        })?;
        let param = IndexParam::new()
            .field_name(VECTOR_FIELD)
            .index_type(match index.config.index {
                MilvusIndexKind::Flat => IndexType::Flat,
                MilvusIndexKind::Hnsw { .. } => IndexType::Hnsw,
                MilvusIndexKind::IvfFlat { .. } => IndexType::IvfFlat,
            })
            .metric_type(metric(similarity))
            .extra_params(index.config.index.build_params());
        let request = CreateIndexRequest::builder()
            .collection_name(&name)
            .index_params(vec![param])
            .build()
            .map_err(|e| index.error("create index", e))?;
        index.call(
            "create index",
            |c| async move { c.create_index(request).await },
        )?;
        index.load()?;
        Ok(index)
    }

    /// Opens the existing collection `config.collection`: its width, metric and index type (from
    /// the index on its vector field) and row count are read from the server; searches use
    /// `config.index`'s search parameters when it is of the collection's index type, else that
    /// type's defaults ([`MilvusIndexKind::HNSW`]'s ef 128; IVF nprobe 16).
    ///
    /// # Errors
    /// [`IndexError::CollectionMissing`] when there is no such collection;
    /// [`IndexError::CollectionMismatch`] when it has no Int64 primary key, no float vector
    /// field, or no index on it; the connection errors of [`MilvusIndex::create`].
    pub fn open(config: MilvusConfig) -> Result<Self> {
        config.check()?;
        let mut index = Self::connected(config)?;
        if !index.exists()? {
            return Err(IndexError::CollectionMissing {
                collection: index.config.collection.clone(),
            });
        }
        let name = index.config.collection.clone();
        let request = DescribeCollectionRequest::builder()
            .collection_name(&name)
            .build()
            .map_err(|e| index.error("describe collection", e))?;
        let described = index.call("describe collection", |c| async move {
            c.describe_collection(request).await
        })?;
        let schema = described.description().get_schema();
        index.description = schema.get_description().to_owned();
        let mismatch = |reason: String| IndexError::CollectionMismatch {
            collection: name.clone(),
            reason,
        };
        let id = schema
            .get_fields()
            .iter()
            .find(|f| f.is_primary_key())
            .filter(|f| f.get_data_type() == DataType::Int64)
            .ok_or_else(|| mismatch("its primary key is not an Int64 field".into()))?;
        let vector = schema
            .get_fields()
            .iter()
            .find(|f| f.get_data_type() == DataType::FloatVector)
            .ok_or_else(|| mismatch("it has no float vector field".into()))?;
        index.id_field = id.get_name().to_owned();
        index.vector_field = vector.get_name().to_owned();
        index.dim = vector.get_dimension() as usize;
        let request = DescribeIndexRequest::builder()
            .collection_name(&name)
            .field_name(&index.vector_field)
            .build()
            .map_err(|e| index.error("describe index", e))?;
        let indexes = index
            .call("describe index", |c| async move {
                c.describe_index(request).await
            })
            .map_err(|e| match e {
                IndexError::Remote { reason, .. } => mismatch(format!("no index: {reason}")),
                other => other,
            })?;
        let described = indexes
            .indexes()
            .first()
            .ok_or_else(|| mismatch("its vector field has no index".into()))?;
        index.similarity = match described.get_metric_type() {
            MetricType::Ip => Similarity::InnerProduct,
            MetricType::Cosine => Similarity::Cosine,
            MetricType::L2 => Similarity::NegativeL2,
            other => return Err(mismatch(format!("metric {other:?} has no similarity here"))),
        };
        // Search parameters must be those of the collection's index type.
        index.config.index = match (described.get_index_type(), index.config.index) {
            (IndexType::Flat, _) => MilvusIndexKind::Flat,
            (IndexType::Hnsw, kind @ MilvusIndexKind::Hnsw { .. }) => kind,
            (IndexType::Hnsw, _) => MilvusIndexKind::HNSW,
            (IndexType::IvfFlat, kind @ MilvusIndexKind::IvfFlat { .. }) => kind,
            (IndexType::IvfFlat, _) => MilvusIndexKind::IvfFlat {
                nlist: 1_024,
                nprobe: 16,
            },
            (other, _) => {
                return Err(mismatch(format!(
                    "index type {other:?} is not supported here"
                )))
            }
        };
        // A collection loaded already (perhaps with several replicas on a cluster) stays as it is.
        if !index.loaded()? {
            index.load()?;
        }
        index.rows = index.count()?;
        Ok(index)
    }

    /// Drops the collection `config.collection` if it exists; whether it did.
    ///
    /// # Errors
    /// The connection errors of [`MilvusIndex::create`]; [`IndexError::Remote`].
    pub fn drop_collection(config: &MilvusConfig) -> Result<bool> {
        config.check()?;
        let index = Self::connected(config.clone())?;
        if !index.exists()? {
            return Ok(false);
        }
        let request = DropCollectionRequest::builder()
            .collection_name(&config.collection)
            .build()
            .map_err(|e| index.error("drop collection", e))?;
        index.call("drop collection", |c| async move {
            c.drop_collection(request).await
        })?;
        Ok(true)
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &MilvusConfig {
        &self.config
    }

    /// Seals the rows added so far into segments, where Milvus builds the index (searches see
    /// unsealed rows too, by brute force). Call it after a bulk load.
    ///
    /// # Errors
    /// The connection errors of [`MilvusIndex::create`]; [`IndexError::Remote`].
    pub fn flush(&self) -> Result<()> {
        let request = FlushRequest::builder()
            .collection_names([self.config.collection.clone()])
            .build()
            .map_err(|e| self.error("flush", e))?;
        self.call("flush", |c| async move { c.flush(request).await })?;
        Ok(())
    }

    /// Waits until Milvus has built the index over every sealed row (polling its index
    /// description every 200 ms), then releases and loads the collection again so that the query
    /// nodes serve the sealed segments through their index (until then they serve the rows as
    /// flushed, by brute force or an interim index); each wait at most `limit`. Call it after
    /// [`MilvusIndex::flush`] when the next searches should go through the index. Searches from
    /// other handles fail while the collection is released.
    ///
    /// # Errors
    /// [`IndexError::Timeout`] when the index is not complete or the collection not loaded
    /// within `limit`; the connection errors of [`MilvusIndex::create`].
    pub fn wait_indexed(&self, limit: Duration) -> Result<()> {
        let started = Instant::now();
        loop {
            let request = DescribeIndexRequest::builder()
                .collection_name(&self.config.collection)
                .field_name(&self.vector_field)
                .build()
                .map_err(|e| self.error("describe index", e))?;
            let described = self.call("describe index", |c| async move {
                c.describe_index(request).await
            })?;
            let done = described
                .indexes()
                .iter()
                .all(|i| i.get_pending_rows() == 0 && i.get_indexed_rows() >= i.get_total_rows());
            if done {
                return self.reload(limit);
            }
            if started.elapsed() >= limit {
                return Err(IndexError::Timeout {
                    operation: "waiting for the index build",
                    url: self.config.url.clone(),
                    seconds: limit.as_secs_f64(),
                });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The `k` best hits of each query among the rows matching the Milvus boolean `expression`
    /// over the id field (e.g. `id in [1, 5, 9]` or `id > 100`; see Milvus' "boolean expression"
    /// docs); `None` = every row. One request for all queries.
    ///
    /// # Errors
    /// As [`VectorIndex::search_filtered`]; [`IndexError::Remote`] with the server's message for
    /// an expression it rejects.
    pub fn search_expression(
        &self,
        queries: &[f32],
        k: usize,
        expression: Option<&str>,
    ) -> Result<Vec<Vec<Hit>>> {
        check_k(k)?;
        if k > MAX_TOPK {
            return Err(IndexError::InvalidParameter {
                name: "k",
                reason: format!("{k}: Milvus returns at most {MAX_TOPK} hits per query"),
            });
        }
        let nq = check_rows(queries, self.dim, "queries")?;
        let mut hits = Vec::with_capacity(nq);
        for chunk in queries.chunks(MAX_TOPK * self.dim) {
            hits.extend(self.search_chunk(chunk, k, expression)?);
        }
        Ok(hits)
    }

    /// The `k` best hits of each query among the items `allowed` (an `id in [...]` expression).
    ///
    /// # Errors
    /// As [`MilvusIndex::search_expression`].
    pub fn search_ids(&self, queries: &[f32], k: usize, allowed: &[u64]) -> Result<Vec<Vec<Hit>>> {
        let nq = check_rows(queries, self.dim, "queries")?;
        if allowed.is_empty() {
            check_k(k)?;
            return Ok(vec![Vec::new(); nq]);
        }
        self.search_expression(queries, k, Some(&id_expression(&self.id_field, allowed)?))
    }

    /// The consistency level of the next search, as [`MilvusConfig::reads`] says.
    fn search_consistency(&self) -> ConsistencyLevel {
        let recent_write = || {
            self.last_write
                .is_some_and(|at| at.elapsed() < MilvusReads::RECENT)
        };
        match self.config.reads {
            MilvusReads::Strong => ConsistencyLevel::Strong,
            MilvusReads::Automatic if recent_write() => ConsistencyLevel::Strong,
            MilvusReads::Automatic | MilvusReads::Bounded => ConsistencyLevel::Bounded,
        }
    }

    fn search_chunk(
        &self,
        queries: &[f32],
        k: usize,
        expression: Option<&str>,
    ) -> Result<Vec<Vec<Hit>>> {
        let vectors: Vec<Vec<f32>> = queries.chunks(self.dim).map(<[f32]>::to_vec).collect();
        let nq = vectors.len();
        let mut builder = SearchRequest::builder()
            .collection_name(&self.config.collection)
            .vector_field(&self.vector_field)
            .vectors(SearchVectors::Float(vectors))
            .limit(k as i64)
            .metric_type(metric(self.similarity))
            .consistency_level(self.search_consistency())
            .extra_params(self.config.index.search_params(k));
        if let Some(expression) = expression {
            builder = builder.filter(expression);
        }
        let request = builder.build().map_err(|e| self.error("search", e))?;
        let response = self.call("search", |c| async move { c.search(request).await })?;
        let results = response.results();
        if results.len() != nq {
            return Err(IndexError::Remote {
                operation: "search",
                reason: format!("{} result lists for {nq} queries", results.len()),
            });
        }
        results
            .iter()
            .map(|result| {
                let Ids::Int64(ids) = result.get_ids() else {
                    return Err(IndexError::Remote {
                        operation: "search",
                        reason: "the collection's ids are not Int64".into(),
                    });
                };
                let mut hits: Vec<Hit> = ids
                    .iter()
                    .zip(result.get_scores())
                    .map(|(&id, &score)| Hit::new(id as u64, self.our_score(score)))
                    .collect();
                hits.sort_by(Hit::ranking);
                Ok(hits)
            })
            .collect()
    }

    /// Milvus' score or distance as "higher is more similar".
    fn our_score(&self, milvus: f32) -> f32 {
        match self.similarity {
            Similarity::NegativeL2 => -milvus,
            Similarity::InnerProduct | Similarity::Cosine => milvus,
        }
    }

    fn exists(&self) -> Result<bool> {
        let request = HasCollectionRequest::builder()
            .collection_name(&self.config.collection)
            .build()
            .map_err(|e| self.error("has collection", e))?;
        Ok(self
            .call("has collection", |c| async move {
                c.has_collection(request).await
            })?
            .exists())
    }

    fn loaded(&self) -> Result<bool> {
        let request = GetLoadStateRequest::builder()
            .collection_name(&self.config.collection)
            .build()
            .map_err(|e| self.error("get load state", e))?;
        let state = self.call("get load state", |c| async move {
            c.get_load_state(request).await
        })?;
        Ok(state.state() == LoadState::Loaded)
    }

    /// Loads the collection with [`MilvusConfig::replicas`] replicas.
    fn load(&self) -> Result<()> {
        self.load_within(self.config.timeout)
    }

    /// Loads the collection and waits until it is loaded, at most `limit`.
    fn load_within(&self, limit: Duration) -> Result<()> {
        let request = LoadCollectionRequest::builder()
            .collection_name(&self.config.collection)
            .replica_number(self.config.replicas as i32)
            .timeout_ms(limit.as_millis().min(i64::MAX as u128) as i64)
            .build()
            .map_err(|e| self.error("load collection", e))?;
        self.call_within("load collection", limit, |c| async move {
            c.load_collection(request).await
        })?;
        Ok(())
    }

    /// Releases and loads the collection again (at most `limit`), so that the query nodes serve
    /// every sealed segment through its built index: rows flushed while the collection was
    /// loaded are served from their unindexed (growing) copies until then.
    fn reload(&self, limit: Duration) -> Result<()> {
        let request = ReleaseCollectionRequest::builder()
            .collection_name(&self.config.collection)
            .build()
            .map_err(|e| self.error("release collection", e))?;
        self.call("release collection", |c| async move {
            c.release_collection(request).await
        })?;
        self.load_within(limit)
    }

    fn count(&self) -> Result<usize> {
        let request = QueryRequest::builder()
            .collection_name(&self.config.collection)
            .output_fields(["count(*)"])
            .consistency_level(ConsistencyLevel::Strong)
            .build()
            .map_err(|e| self.error("count", e))?;
        let response = self.call("count", |c| async move { c.query(request).await })?;
        Ok(response.results().get_row_count() as usize)
    }

    /// The ids among `ids` that the collection holds already.
    fn present(&self, ids: &[u64]) -> Result<Vec<u64>> {
        let mut found = Vec::new();
        for chunk in ids.chunks(IDS_PER_EXPRESSION) {
            let request = QueryRequest::builder()
                .collection_name(&self.config.collection)
                .filter(id_expression(&self.id_field, chunk)?)
                .output_fields([self.id_field.clone()])
                .consistency_level(ConsistencyLevel::Strong)
                .build()
                .map_err(|e| self.error("query ids", e))?;
            let response = self.call("query ids", |c| async move { c.query(request).await })?;
            for row in response
                .results()
                .rows()
                .map_err(|e| self.error("query ids", e))?
            {
                let id = row
                    .get_i64(&self.id_field)
                    .map_err(|e| self.error("query ids", e))?;
                found.push(id as u64);
            }
        }
        Ok(found)
    }

    /// Looks `id`'s vector up on the server (as stored: L2-normalised under cosine similarity);
    /// `None` for an id the collection does not hold. [`VectorIndex::vector`] without the error.
    ///
    /// # Errors
    /// The connection errors of [`MilvusIndex::create`]; [`IndexError::Remote`].
    pub fn fetch_vector(&self, id: u64) -> Result<Option<Vec<f32>>> {
        // A query by expression, not `get`: the client's `get` sends a filter template, which
        // Milvus 2.3 does not parse.
        let request = QueryRequest::builder()
            .collection_name(&self.config.collection)
            .filter(id_expression(&self.id_field, &[id])?)
            .output_fields([self.vector_field.clone()])
            .consistency_level(ConsistencyLevel::Strong)
            .build()
            .map_err(|e| self.error("get", e))?;
        let response = self.call("get", |c| async move { c.query(request).await })?;
        let mut rows = response
            .results()
            .rows()
            .map_err(|e| self.error("get", e))?;
        rows.next()
            .map(|row| {
                row.get_float_vector(&self.vector_field)
                    .map(<[f32]>::to_vec)
                    .map_err(|e| self.error("get", e))
            })
            .transpose()
    }

    /// Runs one client call to completion within the timeout.
    fn call<T, F, Fut>(&self, operation: &'static str, make: F) -> Result<T>
    where
        F: FnOnce(ClientV2) -> Fut,
        Fut: Future<Output = std::result::Result<T, MilvusError>>,
    {
        self.call_within(operation, self.config.timeout, make)
    }

    /// Runs one client call to completion within `limit`.
    fn call_within<T, F, Fut>(&self, operation: &'static str, limit: Duration, make: F) -> Result<T>
    where
        F: FnOnce(ClientV2) -> Fut,
        Fut: Future<Output = std::result::Result<T, MilvusError>>,
    {
        let future = make(self.client.clone());
        match self
            .runtime
            .block_on(async move { tokio::time::timeout(limit, future).await })
        {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(self.error(operation, e)),
            Err(_) => Err(IndexError::Timeout {
                operation,
                url: self.config.url.clone(),
                seconds: limit.as_secs_f64(),
            }),
        }
    }

    fn error(&self, operation: &'static str, error: MilvusError) -> IndexError {
        classify(operation, &self.config.url, error)
    }
}

impl VectorIndex for MilvusIndex {
    fn dim(&self) -> usize {
        self.dim
    }

    fn len(&self) -> usize {
        self.rows
    }

    fn similarity(&self) -> Similarity {
        self.similarity
    }

    /// Inserts in batches of [`MilvusConfig::insert_batch`] rows. Milvus itself accepts a
    /// primary key twice, so the ids are checked first, within the batch and against the
    /// collection (one query per 1,000 ids).
    fn add(&mut self, ids: &[u64], vectors: &[f32]) -> Result<()> {
        let rows = check_rows(vectors, self.dim, "vectors")?;
        if rows != ids.len() {
            return Err(IndexError::Shape {
                what: "ids",
                reason: format!("{} ids for {rows} vectors", ids.len()),
            });
        }
        let mut seen = HashSet::with_capacity(ids.len());
        for &id in ids {
            to_milvus_id(id)?;
            if !seen.insert(id) {
                return Err(IndexError::DuplicateId { id });
            }
        }
        if let Some(&id) = self.present(ids)?.first() {
            return Err(IndexError::DuplicateId { id });
        }
        let mut stored = vectors.to_vec();
        if self.similarity == Similarity::Cosine {
            normalise_rows(&mut stored, self.dim);
        }
        for (id_chunk, rows) in ids
            .chunks(self.config.insert_batch)
            .zip(stored.chunks(self.config.insert_batch * self.dim))
        {
            let request = InsertRequest::builder()
                .collection_name(&self.config.collection)
                .columns(vec![
                    FieldData::Int64 {
                        name: self.id_field.clone(),
                        values: id_chunk.iter().map(|&id| id as i64).collect(),
                    },
                    FieldData::FloatVector {
                        name: self.vector_field.clone(),
                        values: rows.chunks(self.dim).map(<[f32]>::to_vec).collect(),
                    },
                ])
                .build()
                .map_err(|e| self.error("insert", e))?;
            self.call("insert", |c| async move { c.insert(request).await })?;
            self.rows += id_chunk.len();
            self.last_write = Some(Instant::now());
        }
        Ok(())
    }

    /// A closure cannot run on the server: asks Milvus for more and more candidates (4k, 8k, …
    /// up to its limit of 16,384) and keeps those `filter` accepts. A query whose accepted
    /// items all rank below that limit gets fewer than k hits; for selective filters use
    /// [`MilvusIndex::search_ids`] or [`MilvusIndex::search_expression`].
    fn search_filtered(
        &self,
        queries: &[f32],
        k: usize,
        filter: Option<&(dyn Fn(u64) -> bool + Sync)>,
    ) -> Result<Vec<Vec<Hit>>> {
        check_k(k)?;
        let nq = check_rows(queries, self.dim, "queries")?;
        let k = k.min(self.rows).min(MAX_TOPK);
        if k == 0 || nq == 0 {
            return Ok(vec![Vec::new(); nq]);
        }
        let Some(filter) = filter else {
            return self.search_expression(queries, k, None);
        };
        let mut count = (4 * k).min(MAX_TOPK).min(self.rows);
        loop {
            let mut hits = self.search_expression(queries, count, None)?;
            for list in &mut hits {
                list.retain(|h| filter(h.id));
                list.truncate(k);
            }
            let enough = hits.iter().all(|list| list.len() >= k);
            if enough || count >= MAX_TOPK.min(self.rows) {
                return Ok(hits);
            }
            count = (2 * count).min(MAX_TOPK).min(self.rows);
        }
    }

    /// Looked up on the server on first use (one request), then kept in memory; `None` for an
    /// unknown id and when the server cannot be reached (the lookup cannot return an error).
    fn vector(&self, id: u64) -> Option<&[f32]> {
        if let Some(v) = self.cache.get(&id) {
            return Some(v);
        }
        let vector = self.fetch_vector(id).ok().flatten()?;
        Some(self.cache.insert(id, vector.into_boxed_slice()))
    }
}

/// The runtime and a connected client, within the timeout.
fn connect(config: &MilvusConfig) -> Result<(tokio::runtime::Runtime, ClientV2)> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| IndexError::Backend {
            operation: "starting the Milvus client's runtime",
            reason: e.to_string(),
        })?;
    let connect = ConnectConfig::new()
        .uri(&config.url)
        .connect_timeout(config.timeout)
        .rpc_timeout(config.timeout)
        .retry(
            RetryConfig::new()
                .max_attempts(2)
                .max_retry_timeout(config.timeout),
        );
    let client = match runtime
        .block_on(async { tokio::time::timeout(config.timeout, ClientV2::new(&connect)).await })
    {
        Ok(Ok(client)) => client,
        Ok(Err(e)) => {
            return Err(match classify("connect", &config.url, e) {
                IndexError::Remote { reason, .. } => IndexError::Unreachable {
                    url: config.url.clone(),
                    reason,
                },
                other => other,
            })
        }
        Err(_) => {
            return Err(IndexError::Timeout {
                operation: "connect",
                url: config.url.clone(),
                seconds: config.timeout.as_secs_f64(),
            })
        }
    };
    Ok((runtime, client))
}

/// The client's error as ours: transport failures are [`IndexError::Unreachable`], the server's
/// refusals [`IndexError::Remote`] with its message.
fn classify(operation: &'static str, url: &str, error: MilvusError) -> IndexError {
    match error {
        MilvusError::Grpc(e) => IndexError::Unreachable {
            url: url.to_owned(),
            reason: e.to_string(),
        },
        MilvusError::Timeout(reason) => IndexError::Unreachable {
            url: url.to_owned(),
            reason: format!("timed out: {reason}"),
        },
        MilvusError::Server(e) => IndexError::Remote {
            operation,
            reason: e.reason().to_owned(),
        },
        MilvusError::RetryExhausted { source, .. } => classify(operation, url, *source),
        other => IndexError::Remote {
            operation,
            reason: other.to_string(),
        },
    }
}

/// Milvus' metric for a similarity.
fn metric(similarity: Similarity) -> MetricType {
    match similarity {
        Similarity::InnerProduct => MetricType::Ip,
        Similarity::Cosine => MetricType::Cosine,
        Similarity::NegativeL2 => MetricType::L2,
    }
}

/// Milvus' primary keys are signed 64-bit integers.
fn to_milvus_id(id: u64) -> Result<i64> {
    i64::try_from(id).map_err(|_| IndexError::InvalidParameter {
        name: "id",
        reason: format!("{id} is above Milvus' largest id {}", i64::MAX),
    })
}

/// `field in [a, b, …]`.
fn id_expression(field: &str, ids: &[u64]) -> Result<String> {
    let mut list = String::with_capacity(ids.len() * 8);
    for (i, &id) in ids.iter().enumerate() {
        if i > 0 {
            list.push_str(", ");
        }
        list.push_str(&to_milvus_id(id)?.to_string());
    }
    Ok(format!("{field} in [{list}]"))
}
