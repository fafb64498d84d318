//! The `recordsync` binary: parses the command line and calls the library.

use clap::Parser;
use recordsync::{Cli, Command, telemetry};

// Every delivery to a subscriber allocates and frees many small values (the GraphQL
// result, its JSON text); mimalloc's per-thread free lists make that markedly cheaper
// than glibc's malloc (see the README's Performance section).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init(cli.config.log_format);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Schema => {
            print!("{}", recordsync::graphql::schema::sdl());
            Ok(())
        }
        Command::Migrate => {
            let db = recordsync::store::connect(&cli.config).await?;
            recordsync::store::migrate(&db).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Serve => {
            let listener = tokio::net::TcpListener::bind(cli.config.listen).await?;
            let addr = listener.local_addr()?;
            tracing::info!("recordsync listening; GraphiQL at http://{addr}/graphql");
            recordsync::run(listener, cli.config, shutdown_signal()).await
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
