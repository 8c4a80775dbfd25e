//! The built-in provider: auth accounts in rosterd's own database.
