// Making sure a payload comes back after a reboot or a new shell.

rule persistence
{
    meta:
        behaviour = "persistence"
        severity = "medium"
        confidence = "low"
        description = "writes cron, systemd, autostart, shell rc, launch agent or Run-key entries"
    strings:
        $cron1 = /crontab\s+(-l|-)/
        $cron2 = /\/etc\/cron(\.d|tab|\.daily|\.hourly)/
        $cron3 = "/var/spool/cron"
        $systemd1 = /systemctl\s+(--user\s+)?enable/
        $systemd2 = /\.config\/systemd\/user\/[^\n'"]{1,80}\.service/
        $systemd3 = /\/etc\/systemd\/system\/[^\n'"]{1,80}\.service/
        $autostart = ".config/autostart"
        $rc = /open\s*\([^\n]{0,80}\.(bashrc|zshrc|profile|bash_profile)['"][^\n]{0,20}['"]a/
        $launch = /Library\/LaunchAgents\/[^\n'"]{1,80}\.plist/
        $runkey = /Software\\\\+Microsoft\\\\+Windows\\\\+CurrentVersion\\\\+Run/ nocase
        $schtasks = /schtasks(\.exe)?\s+\/create/ nocase
    condition:
        is_text and any of them
}
