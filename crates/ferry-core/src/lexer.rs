//! A small MySQL lexer (placeholder; see ferry-schema brief).
