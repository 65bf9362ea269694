"""The web portal: professionals of partners without a system link register, follow and
end their meldingen in a browser; on the bus the portal is their partner system."""
