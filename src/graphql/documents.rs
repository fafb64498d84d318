//! Parsed documents by their text, so the few documents clients send over and over
//! are parsed once.
//!
//! Bounded in entries (`--document-cache-size`, least recently used out first) and in
//! size: a document longer than [`MAX_CACHED_TEXT`] is parsed every time. A parsed
//! document takes up to about 200 times its text (a text of nothing but one-letter
//! fields), so an entry holds at most about 400 KiB. Only documents that passed the
//! document limits are kept, and only the parse: every request is still validated
//! against its own variables.

use std::{
    num::NonZeroUsize,
    sync::{Arc, Mutex},
};

use async_graphql::parser::types::ExecutableDocument;
use lru::LruCache;

/// Longest document text kept, in bytes.
pub const MAX_CACHED_TEXT: usize = 2 * 1024;

/// Parsed documents by text.
pub struct Documents(Option<Mutex<LruCache<String, Arc<ExecutableDocument>>>>);

impl Documents {
    /// A cache of at most `entries` documents (0: none).
    pub fn new(entries: usize) -> Self {
        Self(NonZeroUsize::new(entries).map(|n| Mutex::new(LruCache::new(n))))
    }

    /// The parsed document of `text`, if it is kept.
    pub fn get(&self, text: &str) -> Option<ExecutableDocument> {
        let doc = {
            let mut cache = self.0.as_ref()?.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(cache.get(text)?)
        };
        // The copy is made outside the lock.
        Some(ExecutableDocument::clone(&doc))
    }

    /// Keeps `doc`, the parse of `text`.
    pub fn put(&self, text: &str, doc: &ExecutableDocument) {
        if text.len() > MAX_CACHED_TEXT {
            return;
        }
        if let Some(cache) = &self.0 {
            let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
            cache.put(text.to_owned(), Arc::new(doc.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ExecutableDocument {
        async_graphql::parser::parse_query(text).unwrap()
    }

    #[test]
    fn keeps_the_latest_documents_up_to_its_size() {
        let docs = Documents::new(2);
        for text in ["{ a }", "{ b }", "{ c }"] {
            docs.put(text, &parse(text));
        }
        assert!(
            docs.get("{ a }").is_none(),
            "the least recently used goes first"
        );
        assert!(docs.get("{ b }").is_some() && docs.get("{ c }").is_some());
        let long = format!("{{ a{} }}", " ".repeat(MAX_CACHED_TEXT));
        docs.put(&long, &parse(&long));
        assert!(docs.get(&long).is_none(), "too long to keep");
        let off = Documents::new(0);
        off.put("{ a }", &parse("{ a }"));
        assert!(off.get("{ a }").is_none());
    }
}
