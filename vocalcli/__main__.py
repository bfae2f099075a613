from vocalcli.cli import main

main()
