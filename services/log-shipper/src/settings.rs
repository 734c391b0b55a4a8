//! From a loaded log-shipper file (`[log_shipper]`) to the shipper's [`Settings`].

use flotilla_config::ShipperConfigFile;

use crate::run::Settings;
use crate::ship::ShipTiming;

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("log_shipper.tls: TLS is not available yet; remove the section and use http://")]
    TlsUnsupported,
}

impl Settings {
    /// The log-shipper a file describes.
    pub fn from_config(file: &ShipperConfigFile) -> Result<Settings, SettingsError> {
        let section = &file.log_shipper;
        if section.tls.is_some() {
            return Err(SettingsError::TlsUnsupported);
        }
        Ok(Settings {
            listen: section.listen,
            data_dir: section.data_dir.clone(),
            coordinator_url: section.coordinator_url.clone(),
            token: section.token.clone(),
            shipper_id: section.id.clone(),
            advertise_url: section.advertise_url.clone(),
            timing: ShipTiming::default(),
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
    }
}
