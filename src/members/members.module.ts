import { Module } from '@nestjs/common';
import { ImagesModule } from '../images/images.module.js';
import { PolicyModule } from '../policy/policy.module.js';
import { RegistryModule } from '../registry/registry.module.js';
import { MembersController } from './members.controller.js';
import { MembersService } from './members.service.js';

@Module({
  imports: [ImagesModule, RegistryModule, PolicyModule],
  controllers: [MembersController],
  providers: [MembersService],
})
export class MembersModule {}
