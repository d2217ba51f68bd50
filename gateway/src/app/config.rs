//! Reading the config file once, with every section typed: the file's own schema (the config
//! crate) and the `auth.oidc` section, whose schema and checks belong to the auth crate. Errors
//! name the file and the field.

use podgate_auth::OidcConfig;
use std::path::Path;

/// A config file, read, with its `auth.oidc` typed.
pub struct Loaded {
    pub config: podgate_config::Config,
    /// `auth.oidc`, typed, its relative paths resolved against the file's directory.
    pub oidc: Option<OidcConfig>,
    /// The file's modification time before it was read, so a later edit is told apart.
    pub modified: Option<std::time::SystemTime>,
}

pub fn load(path: &Path) -> anyhow::Result<Loaded> {
    let modified = super::serve::modified(path);
    let config = podgate_config::load(path)?;
    let oidc = oidc_section(path, &config)?;
    Ok(Loaded {
        config,
        oidc,
        modified,
    })
}

fn oidc_section(
    path: &Path,
    config: &podgate_config::Config,
) -> anyhow::Result<Option<OidcConfig>> {
    let Some(section) = &config.auth.oidc else {
        return Ok(None);
    };
    let file = path.display();
    let mut oidc: OidcConfig = serde_norway::from_value(section.clone())
        .map_err(|e| anyhow::anyhow!("{file}: auth.oidc: {e}"))?;
    let base = path.parent().unwrap_or(Path::new("."));
    for issuer in &mut oidc.issuers {
        if let Some(ca) = &mut issuer.ca_file
            && ca.is_relative()
        {
            *ca = base.join(&*ca);
        }
    }
    if let Some(login) = &mut oidc.login {
        login.resolve_paths(base);
    }
    // Its values are checked where they are used, by the auth crate (`app::authn`).
    Ok(Some(oidc))
}
