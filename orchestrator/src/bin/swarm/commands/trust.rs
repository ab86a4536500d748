//! `swarm trust [--revoke]`: the repository's `swarm.toml` trusted as it
//! is now (what it weakens and where its keys go said first), or
//! forgotten. The rules are `swarm_orchestrator::trust`'s.

use std::path::Path;

use anyhow::anyhow;
use swarm_orchestrator::plan;
use swarm_orchestrator::trust;

use crate::common::open_repo;
use crate::config_origin::{repository_config, store};
use crate::failure::Failure;
use swarm_orchestrator::view::trust::{TRUSTED, trusting};

/// `swarm trust`'s command line.
#[derive(Debug, clap::Args)]
pub struct TrustArgs {
    /// Forget the trust instead.
    #[arg(long)]
    revoke: bool,
}

/// `swarm trust [--revoke]`.
pub(crate) fn trust_cmd(cwd: &Path, args: TrustArgs) -> Result<i32, Failure> {
    let revoke = args.revoke;
    let repo = open_repo(cwd)?;
    let file = repository_config(&repo);
    let store = store().ok_or_else(|| {
        Failure::Invalid(anyhow!(
            "trust {}: swarm has nowhere to remember it\nhelp: set HOME (or XDG_CONFIG_HOME): trust is kept in ~/.config/swarm/trusted",
            file.display()
        ))
    })?;
    if revoke {
        let was = store
            .revoke(&file)
            .map_err(|e| Failure::Internal(anyhow!(e)))?;
        match was {
            true => println!("{}: no longer trusted", file.display()),
            false => println!("{}: was not trusted", file.display()),
        }
        return Ok(swarm_orchestrator::exit::SUCCESS);
    }
    let text = std::fs::read_to_string(&file).map_err(|e| {
        Failure::Invalid(anyhow!(
            "trust {}: {e}\nhelp: `swarm trust` trusts the swarm.toml at the repository's root, which `swarm plan` reads",
            file.display()
        ))
    })?;
    let template = plan::parse_template(Path::new(crate::common::CONFIG_FILE), text.clone())
        .map_err(Failure::Plan)?;
    let hash = trust::content_hash(text.as_bytes());
    let source = &template.source;
    print!("{}", trusting(&file, &hash, source, &template.models));
    store
        .trust(&file, text.as_bytes())
        .map_err(|e| Failure::Internal(anyhow!(e)))?;
    println!("{TRUSTED}");
    Ok(swarm_orchestrator::exit::SUCCESS)
}
