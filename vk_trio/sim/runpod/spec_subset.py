"""The request side of RunPod's v2 OpenAPI document, as the simulator validates it.

Generated from shared/specs/runpod-rest-v2.openapi.json by
``vk_trio.sim.runpod.validation.extract_subset`` (descriptions and examples dropped); do not edit
by hand. tests/sim/runpod/test_validation.py fails when it no longer matches the document. It is a
Python module rather than a data file so that the simulator works from the single-file .pyz.
"""

from __future__ import annotations

import json
from typing import Any

SPEC_SUBSET: dict[str, Any] = json.loads(
    r"""
{
 "components": {
  "parameters": {
   "CatalogIncludeParam": {
    "explode": false,
    "in": "query",
    "name": "include",
    "required": false,
    "schema": {
     "items": {
      "$ref": "#/components/schemas/CatalogInclude"
     },
     "maxItems": 1,
     "type": "array"
    },
    "style": "form"
   },
   "CountryCodesFilter": {
    "explode": false,
    "in": "query",
    "name": "countryCodes",
    "required": false,
    "schema": {
     "items": {
      "pattern": "^[A-Z]{2}$",
      "type": "string"
     },
     "type": "array"
    },
    "style": "form"
   },
   "CudaVersionsFilter": {
    "explode": false,
    "in": "query",
    "name": "cudaVersions",
    "required": false,
    "schema": {
     "items": {
      "pattern": "^\\d+\\.\\d+$",
      "type": "string"
     },
     "type": "array"
    },
    "style": "form"
   },
   "GpuCloudFilter": {
    "in": "query",
    "name": "cloud",
    "required": false,
    "schema": {
     "$ref": "#/components/schemas/GpuCloudFilter"
    }
   },
   "GpuCountFilter": {
    "in": "query",
    "name": "count",
    "required": false,
    "schema": {
     "default": 1,
     "minimum": 1,
     "type": "integer"
    }
   },
   "GpuProductFilter": {
    "explode": false,
    "in": "query",
    "name": "product",
    "required": false,
    "schema": {
     "items": {
      "$ref": "#/components/schemas/Product"
     },
     "type": "array"
    },
    "style": "form"
   },
   "LogLastEventID": {
    "in": "header",
    "name": "Last-Event-ID",
    "required": false,
    "schema": {
     "format": "date-time",
     "type": "string"
    }
   },
   "LogSince": {
    "in": "query",
    "name": "since",
    "required": false,
    "schema": {
     "format": "date-time",
     "type": "string"
    }
   },
   "LogSourceParam": {
    "in": "query",
    "name": "source",
    "required": false,
    "schema": {
     "$ref": "#/components/schemas/LogSource"
    }
   },
   "LogTail": {
    "in": "query",
    "name": "tail",
    "required": false,
    "schema": {
     "default": 100,
     "maximum": 5000,
     "minimum": 0,
     "type": "integer"
    }
   },
   "MinCudaVersionFilter": {
    "in": "query",
    "name": "minCudaVersion",
    "required": false,
    "schema": {
     "pattern": "^\\d+(\\.\\d+)?$",
     "type": "string"
    }
   }
  },
  "schemas": {
   "BaseContainerConfig": {
    "properties": {
     "args": {
      "type": "string"
     },
     "disk": {
      "minimum": 1,
      "type": "integer"
     },
     "env": {
      "additionalProperties": {
       "type": "string"
      },
      "type": "object"
     },
     "image": {
      "type": "string"
     },
     "ports": {
      "items": {
       "type": "string"
      },
      "type": "array"
     }
    },
    "type": "object"
   },
   "BaseCpuConfig": {
    "properties": {
     "id": {
      "minLength": 1,
      "type": "string"
     },
     "vcpuCount": {
      "minimum": 2,
      "type": "integer"
     }
    },
    "required": [
     "id",
     "vcpuCount"
    ],
    "type": "object"
   },
   "CatalogInclude": {
    "enum": [
     "AVAILABILITY"
    ],
    "type": "string"
   },
   "Cloud": {
    "enum": [
     "SECURE",
     "COMMUNITY"
    ],
    "type": "string"
   },
   "Compliance": {
    "enum": [
     "GDPR",
     "ISO_IEC_27001",
     "ISO_14001",
     "PCI_DSS",
     "HITRUST",
     "SOC_1_TYPE_2",
     "SOC_2_TYPE_2",
     "SOC_3_TYPE_2",
     "ITAR",
     "FISMA_HIGH",
     "HIPAA",
     "RENEWABLE"
    ],
    "type": "string"
   },
   "ContainerConfig": {
    "allOf": [
     {
      "$ref": "#/components/schemas/BaseContainerConfig"
     },
     {
      "properties": {
       "registry": {
        "type": [
         "string",
         "null"
        ]
       }
      },
      "type": "object"
     }
    ]
   },
   "CreateCpuConfig": {
    "allOf": [
     {
      "$ref": "#/components/schemas/BaseCpuConfig"
     }
    ],
    "unevaluatedProperties": false
   },
   "CreateGpuConfig": {
    "allOf": [
     {
      "$ref": "#/components/schemas/GpuConfig"
     },
     {
      "properties": {
       "allowedCudaVersions": {
        "items": {
         "pattern": "^\\d+\\.\\d+$",
         "type": "string"
        },
        "type": "array"
       },
       "minCudaVersion": {
        "pattern": "^\\d+\\.\\d+$",
        "type": "string"
       }
      },
      "type": "object"
     }
    ],
    "unevaluatedProperties": false
   },
   "CreatePodRequest": {
    "allOf": [
     {
      "$ref": "#/components/schemas/ContainerConfig"
     },
     {
      "properties": {
       "cloud": {
        "allOf": [
         {
          "$ref": "#/components/schemas/Cloud"
         }
        ],
        "default": "SECURE"
       },
       "cpu": {
        "$ref": "#/components/schemas/CreateCpuConfig"
       },
       "dataCenterIds": {
        "items": {
         "type": "string"
        },
        "type": "array"
       },
       "globalNetworking": {
        "default": false,
        "type": "boolean"
       },
       "gpu": {
        "$ref": "#/components/schemas/CreateGpuConfig"
       },
       "mounts": {
        "$ref": "#/components/schemas/Mounts"
       },
       "name": {
        "minLength": 1,
        "type": "string"
       },
       "startJupyter": {
        "default": false,
        "type": "boolean"
       },
       "startSsh": {
        "default": false,
        "type": "boolean"
       },
       "templateId": {
        "minLength": 1,
        "type": "string"
       }
      },
      "required": [
       "name"
      ],
      "type": "object"
     }
    ],
    "if": {
     "not": {
      "required": [
       "templateId"
      ]
     }
    },
    "then": {
     "required": [
      "image"
     ]
    },
    "unevaluatedProperties": false
   },
   "CreateRegistryRequest": {
    "additionalProperties": false,
    "properties": {
     "name": {
      "minLength": 1,
      "type": "string"
     },
     "password": {
      "minLength": 1,
      "type": "string"
     },
     "username": {
      "minLength": 1,
      "type": "string"
     }
    },
    "required": [
     "name",
     "username",
     "password"
    ],
    "type": "object"
   },
   "DataCenterInclude": {
    "enum": [
     "GPU_AVAILABILITY",
     "CPU_AVAILABILITY"
    ],
    "type": "string"
   },
   "DataCenterRegion": {
    "enum": [
     "NORTH_AMERICA",
     "SOUTH_AMERICA",
     "EUROPE",
     "ASIA",
     "MIDDLE_EAST",
     "AFRICA",
     "OCEANIA",
     "ANTARCTICA",
     "UNKNOWN"
    ],
    "type": "string"
   },
   "GpuCloudFilter": {
    "enum": [
     "SECURE",
     "COMMUNITY"
    ],
    "type": "string"
   },
   "GpuConfig": {
    "properties": {
     "count": {
      "default": 1,
      "minimum": 1,
      "type": "integer"
     },
     "id": {
      "type": "string"
     }
    },
    "required": [
     "id"
    ],
    "type": "object"
   },
   "LogSource": {
    "enum": [
     "container",
     "system"
    ],
    "type": "string"
   },
   "Mounts": {
    "additionalProperties": false,
    "properties": {
     "network": {
      "items": {
       "$ref": "#/components/schemas/NetworkMount"
      },
      "maxItems": 1,
      "type": "array"
     },
     "persistent": {
      "$ref": "#/components/schemas/PersistentMount"
     }
    },
    "type": "object"
   },
   "NetworkMount": {
    "additionalProperties": false,
    "properties": {
     "path": {
      "type": "string"
     },
     "volumeId": {
      "type": "string"
     }
    },
    "required": [
     "volumeId",
     "path"
    ],
    "type": "object"
   },
   "PersistentMount": {
    "additionalProperties": false,
    "properties": {
     "path": {
      "type": "string"
     },
     "size": {
      "minimum": 10,
      "type": "integer"
     }
    },
    "required": [
     "size",
     "path"
    ],
    "type": "object"
   },
   "PodAction": {
    "enum": [
     "start",
     "stop",
     "restart",
     "terminate"
    ],
    "type": "string"
   },
   "PodActionRequest": {
    "additionalProperties": false,
    "properties": {
     "action": {
      "$ref": "#/components/schemas/PodAction"
     }
    },
    "required": [
     "action"
    ],
    "type": "object"
   },
   "Product": {
    "enum": [
     "POD",
     "CLUSTER",
     "SERVERLESS"
    ],
    "type": "string"
   },
   "UpdatePodRequest": {
    "allOf": [
     {
      "$ref": "#/components/schemas/ContainerConfig"
     },
     {
      "properties": {
       "globalNetworking": {
        "type": "boolean"
       },
       "locked": {
        "type": "boolean"
       },
       "mounts": {
        "$ref": "#/components/schemas/Mounts"
       },
       "name": {
        "minLength": 1,
        "type": "string"
       },
       "templateId": {
        "type": "string"
       }
      },
      "type": "object"
     }
    ],
    "unevaluatedProperties": false
   },
   "VolumeType": {
    "enum": [
     "STANDARD",
     "HIGH_PERFORMANCE"
    ],
    "type": "string"
   }
  }
 },
 "paths": {
  "/v2/catalog/datacenters": {
   "get": {
    "operationId": "listDataCenters",
    "parameters": [
     {
      "explode": false,
      "in": "query",
      "name": "include",
      "required": false,
      "schema": {
       "items": {
        "$ref": "#/components/schemas/DataCenterInclude"
       },
       "type": "array"
      },
      "style": "form"
     },
     {
      "explode": false,
      "in": "query",
      "name": "regions",
      "required": false,
      "schema": {
       "items": {
        "$ref": "#/components/schemas/DataCenterRegion"
       },
       "type": "array"
      },
      "style": "form"
     },
     {
      "explode": false,
      "in": "query",
      "name": "networkVolumeTypes",
      "required": false,
      "schema": {
       "items": {
        "$ref": "#/components/schemas/VolumeType"
       },
       "type": "array"
      },
      "style": "form"
     },
     {
      "explode": false,
      "in": "query",
      "name": "compliance",
      "required": false,
      "schema": {
       "items": {
        "$ref": "#/components/schemas/Compliance"
       },
       "type": "array"
      },
      "style": "form"
     },
     {
      "in": "query",
      "name": "globalNetwork",
      "required": false,
      "schema": {
       "type": "boolean"
      }
     }
    ]
   }
  },
  "/v2/catalog/datacenters/{id}": {
   "get": {
    "operationId": "getDataCenter",
    "parameters": [
     {
      "in": "path",
      "name": "id",
      "required": true,
      "schema": {
       "type": "string"
      }
     },
     {
      "explode": false,
      "in": "query",
      "name": "include",
      "required": false,
      "schema": {
       "items": {
        "$ref": "#/components/schemas/DataCenterInclude"
       },
       "type": "array"
      },
      "style": "form"
     }
    ]
   }
  },
  "/v2/catalog/gpus": {
   "get": {
    "operationId": "listGpuTypes",
    "parameters": [
     {
      "$ref": "#/components/parameters/CatalogIncludeParam"
     },
     {
      "$ref": "#/components/parameters/GpuProductFilter"
     },
     {
      "$ref": "#/components/parameters/GpuCountFilter"
     },
     {
      "$ref": "#/components/parameters/GpuCloudFilter"
     },
     {
      "$ref": "#/components/parameters/CountryCodesFilter"
     },
     {
      "$ref": "#/components/parameters/CudaVersionsFilter"
     },
     {
      "$ref": "#/components/parameters/MinCudaVersionFilter"
     }
    ]
   }
  },
  "/v2/catalog/gpus/{id}": {
   "get": {
    "operationId": "getGpuType",
    "parameters": [
     {
      "in": "path",
      "name": "id",
      "required": true,
      "schema": {
       "type": "string"
      }
     },
     {
      "$ref": "#/components/parameters/CatalogIncludeParam"
     },
     {
      "$ref": "#/components/parameters/GpuProductFilter"
     },
     {
      "$ref": "#/components/parameters/GpuCountFilter"
     },
     {
      "$ref": "#/components/parameters/GpuCloudFilter"
     },
     {
      "$ref": "#/components/parameters/CountryCodesFilter"
     },
     {
      "$ref": "#/components/parameters/CudaVersionsFilter"
     },
     {
      "$ref": "#/components/parameters/MinCudaVersionFilter"
     }
    ]
   }
  },
  "/v2/pods": {
   "get": {
    "operationId": "listPods",
    "parameters": [
     {
      "in": "query",
      "name": "includeClusterPods",
      "required": false,
      "schema": {
       "default": false,
       "type": "boolean"
      }
     }
    ]
   },
   "post": {
    "operationId": "createPod",
    "requestBody": {
     "$ref": "#/components/schemas/CreatePodRequest"
    }
   }
  },
  "/v2/pods/{id}": {
   "delete": {
    "operationId": "deletePod",
    "parameters": [
     {
      "in": "path",
      "name": "id",
      "required": true,
      "schema": {
       "type": "string"
      }
     }
    ]
   },
   "get": {
    "operationId": "getPod",
    "parameters": [
     {
      "in": "path",
      "name": "id",
      "required": true,
      "schema": {
       "type": "string"
      }
     }
    ]
   },
   "patch": {
    "operationId": "updatePod",
    "parameters": [
     {
      "in": "path",
      "name": "id",
      "required": true,
      "schema": {
       "type": "string"
      }
     }
    ],
    "requestBody": {
     "$ref": "#/components/schemas/UpdatePodRequest"
    }
   }
  },
  "/v2/pods/{id}/action": {
   "post": {
    "operationId": "podAction",
    "parameters": [
     {
      "in": "path",
      "name": "id",
      "required": true,
      "schema": {
       "type": "string"
      }
     }
    ],
    "requestBody": {
     "$ref": "#/components/schemas/PodActionRequest"
    }
   }
  },
  "/v2/pods/{id}/logs": {
   "get": {
    "operationId": "getPodLogs",
    "parameters": [
     {
      "in": "path",
      "name": "id",
      "required": true,
      "schema": {
       "type": "string"
      }
     },
     {
      "$ref": "#/components/parameters/LogSourceParam"
     },
     {
      "$ref": "#/components/parameters/LogTail"
     },
     {
      "$ref": "#/components/parameters/LogSince"
     },
     {
      "$ref": "#/components/parameters/LogLastEventID"
     }
    ]
   }
  },
  "/v2/registries": {
   "get": {
    "operationId": "listRegistries"
   },
   "post": {
    "operationId": "createRegistry",
    "requestBody": {
     "$ref": "#/components/schemas/CreateRegistryRequest"
    }
   }
  },
  "/v2/registries/{id}": {
   "delete": {
    "operationId": "deleteRegistry",
    "parameters": [
     {
      "in": "path",
      "name": "id",
      "required": true,
      "schema": {
       "type": "string"
      }
     }
    ]
   },
   "get": {
    "operationId": "getRegistry",
    "parameters": [
     {
      "in": "path",
      "name": "id",
      "required": true,
      "schema": {
       "type": "string"
      }
     }
    ]
   }
  }
 }
}
"""
)
