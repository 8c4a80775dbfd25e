//! Supabase Auth (GoTrue) admin API client.
