fn main() -> std::process::ExitCode {
    rosterd::cli::main()
}
