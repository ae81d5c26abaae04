module labclient

go 1.19
