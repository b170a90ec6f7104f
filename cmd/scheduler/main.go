package main
import (
 _ "github.com/robfig/cron/v3"
 _ "gopkg.in/yaml.v3"
 _ "github.com/aliyun/alibaba-cloud-sdk-go/services/sae"
 _ "github.com/prometheus/client_golang/prometheus"
 _ "golang.org/x/time/rate"
)
func main(){}
