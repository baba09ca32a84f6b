//! The counter dictionary (filled in below).
