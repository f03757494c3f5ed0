//! Unit tests, one group per lifecycle decision.
