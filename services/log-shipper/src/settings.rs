//! From a loaded log-shipper file (`[log_shipper]`) to the shipper's [`Settings`].

use flotilla_config::ShipperConfigFile;
use flotilla_proto::transport::{client_tls, server_tls, TransportError};

use crate::run::Settings;
use crate::ship::ShipTiming;

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("log_shipper.tls: {0}")]
    Tls(#[from] TransportError),
}

impl Settings {
    /// The log-shipper a file describes.
    pub fn from_config(file: &ShipperConfigFile) -> Result<Settings, SettingsError> {
        let section = &file.log_shipper;
        // One identity: served to workers, and presented to the coordinator as a client.
        let (tls, coordinator_tls) = match &section.tls {
            None => (None, None),
            Some(tls) => {
                let cert = tls.cert_file.as_deref().unwrap_or(std::path::Path::new(""));
                let key = tls.key_file.as_deref().unwrap_or(std::path::Path::new(""));
                (
                    Some(server_tls(cert, key, tls.client_ca_file.as_deref())?),
                    Some(client_tls(tls.ca_file.as_deref(), Some((cert, key)))?),
                )
            }
        };
        Ok(Settings {
            listen: section.listen,
            data_dir: section.data_dir.clone(),
            coordinator_url: section.coordinator_url.clone(),
            token: section.token.clone(),
            shipper_id: section.id.clone(),
            advertise_url: section.advertise_url.clone(),
            timing: ShipTiming::default(),
            tls,
            coordinator_tls,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_becomes_settings() {
        let text = "[log_shipper]\nid = \"shipper-1\"\nlisten = \"127.0.0.1:17700\"\ncoordinator_url = \"http://127.0.0.1:7600\"\ntoken = \"s\"\ndata_dir = \"/tmp/x\"\n";
        let file = flotilla_config::shipper_config_from_str(text).unwrap().config;
        let settings = Settings::from_config(&file).unwrap();
        assert_eq!(settings.listen.to_string(), "127.0.0.1:17700");
        assert_eq!(settings.shipper_id, "shipper-1");
        assert_eq!(settings.token.unwrap().expose(), "s");
        assert_eq!(settings.advertise_url, None);
        assert_eq!(settings.timing, ShipTiming::default());
        assert!(settings.tls.is_none() && settings.coordinator_tls.is_none());
    }
}
