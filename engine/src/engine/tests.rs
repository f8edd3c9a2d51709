//! Engine unit tests (filled in next).
